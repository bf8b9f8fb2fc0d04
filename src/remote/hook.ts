/**
 * Runs a user's shell command (a hook, `nexus exec`) on a server: in a directory, with an env that
 * arrives on stdin (never on a command line, where `ps` would show it), in its own process group,
 * with a timeout. When stdin closes (the command was interrupted, or the SSH connection dropped)
 * the whole group is stopped (SIGTERM, SIGKILL 3 s later) and waited for, so nothing the command
 * started outlives it.
 *
 * A small Node program (Node is on every server nexus deploys to): sh cannot wait for a child and
 * for EOF on its stdin at once without leaving a reader behind. No single quote and no "$" in it:
 * it sits in single quotes in COMMAND_SCRIPT.
 */
const PROGRAM = `
const { spawn } = require("node:child_process");
const [command, timeoutArg] = process.argv.slice(1);
const timeoutMs = Number(timeoutArg) || 0;
let child;
let buffered = "";
let stopping = false;
const stop = (why, code) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write("nexus: " + why + "\\n");
  if (!child) process.exit(code);
  const group = -child.pid;
  const signal = (name) => { try { process.kill(group, name); return true; } catch { return false; } };
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
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  child.on("error", (error) => { process.stderr.write(String(error.message) + "\\n"); process.exit(127); });
  child.on("exit", (code, signal) => { if (!stopping) process.exit(code === null ? 128 + (signal === "SIGKILL" ? 9 : 15) : code); });
  if (timeoutMs > 0) setTimeout(() => stop("timed out after " + timeoutMs + "ms", 124), timeoutMs).unref();
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
