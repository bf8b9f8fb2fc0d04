/**
 * Runs a user's shell command (a hook, `nexus exec`) on a server: in a directory, with an env that
 * arrives on stdin (never on a command line, where `ps` would show it), in its own process group,
 * with a timeout. When stdin closes (the command was interrupted, or the SSH connection dropped)
 * the whole group is stopped (SIGTERM, SIGKILL 3 s later) and waited for, so nothing the command
 * started outlives it.
 *
 * The command's output reaches the channel through this program, never directly: a background
 * child the command leaves behind (`warm-cache &`) holds only a pipe to it, not the SSH channel.
 * When the shell exits, whatever it left running in its group is reported ("left running: pid
 * (name)"). The program ends once the command's output is closed; while leftovers keep it open,
 * the timeout still counts, and at the timeout the group is stopped as for any timeout. So the
 * timeout bounds the channel, not only the shell (sshd keeps a channel open while anything holds
 * its stdout: a 2 s hook once held a deploy for as long as its child lived).
 *
 * A small Node program (Node is on every server nexus deploys to): sh cannot wait for a child and
 * for EOF on its stdin at once without leaving a reader behind. No single quote and no "$" in it:
 * it sits in single quotes in COMMAND_SCRIPT.
 */
const PROGRAM = `
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const [command, timeoutArg] = process.argv.slice(1);
const timeoutMs = Number(timeoutArg) || 0;
let child;
let buffered = "";
let stopping = false;
let exited;
const signal = (name) => { try { process.kill(-child.pid, name); return true; } catch { return false; } };
// The processes still in the group of the command (Linux /proc: pid, then its name).
const leftovers = () => {
  const found = [];
  let names = [];
  try { names = fs.readdirSync("/proc"); } catch {}
  for (const name of names) {
    if (String(Number(name)) !== name) continue;
    let stat;
    try { stat = fs.readFileSync("/proc/" + name + "/stat", "utf8"); } catch { continue; }
    const close = stat.lastIndexOf(")");
    if (Number(stat.slice(close + 2).split(" ")[2]) === child.pid) found.push(name + " (" + stat.slice(stat.indexOf("(") + 1, close) + ")");
  }
  return found;
};
const stop = (why, code) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write("nexus: " + why + "\\n");
  if (!child) process.exit(code);
  signal("SIGTERM");
  // Until the whole group is gone, not only sh: a process that traps SIGTERM (a migration
  // finishing its transaction) would keep running, and keep the SSH channel open, after us.
  // A zombie nobody reaps (PID 1 of some containers) or a process in uninterruptible sleep
  // outlives SIGKILL: 2 s after it, this ends regardless.
  const began = Date.now();
  setInterval(() => {
    if (!signal(0) || Date.now() - began >= 5000) process.exit(code);
    if (Date.now() - began >= 3000) signal("SIGKILL");
  }, 50);
};
const start = (env) => {
  child = spawn("sh", ["-c", command], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout.on("data", (chunk) => process.stdout.write(chunk));
  child.stderr.on("data", (chunk) => process.stderr.write(chunk));
  child.on("error", (error) => { process.stderr.write(String(error.message) + "\\n"); process.exit(127); });
  child.on("exit", (code, signalName) => {
    exited = code === null ? 128 + (signalName === "SIGKILL" ? 9 : 15) : code;
    if (stopping || !signal(0)) return;
    const left = leftovers();
    process.stderr.write("nexus: the command exited (" + exited + ") and left running: " + (left.join(", ") || "processes of its group") + "\\n");
  });
  // Its output closed and the shell gone: done, whatever it left running with other output.
  child.on("close", () => { if (!stopping) process.exit(exited); });
  const timedOut = () => stop("timed out after " + timeoutMs + "ms" + (exited === undefined ? "" : ": the command had exited (" + exited + "), but what it left running kept its output open"), 124);
  if (timeoutMs > 0) setTimeout(timedOut, timeoutMs).unref();
};
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  if (child) return;
  buffered += chunk;
  const end = buffered.indexOf("\\n");
  if (end < 0) return;
  let env = {};
  try { env = JSON.parse(buffered.slice(0, end)); } catch { process.stderr.write("nexus: bad env line\\n"); process.exit(2); }
  start(env);
});
process.stdin.on("end", () => stop("interrupted", 130));
`;

/** $1 the directory, $2 the shell command, $3 the timeout in ms (0: none). The env is stdin's first line, as JSON. */
export const COMMAND_SCRIPT = `cd "$1" || exit 1
exec node -e '${PROGRAM}' "$2" "$3"`;

/** Exit codes COMMAND_SCRIPT uses for a command it stopped. */
export const COMMAND_EXIT = { timeout: 124, interrupted: 130 } as const;

/** The first line COMMAND_SCRIPT reads: the command's env. Values may hold anything JSON can. */
export function envLine(env: Record<string, string>): string {
  return `${JSON.stringify(env)}\n`;
}
