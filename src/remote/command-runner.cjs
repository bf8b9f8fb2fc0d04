// @ts-check
/**
 * Runs a user's shell command (a hook, `nexus exec`) on a server, started by command.sh as
 * `node -e <this> COMMAND TIMEOUT_MS`: in its own process group, with the env that arrives as the
 * first line of stdin (JSON: never on a command line, where `ps` would show it), and a timeout
 * (0: none). When stdin closes (the command was interrupted, or the SSH connection dropped) the
 * whole group is stopped (SIGTERM, SIGKILL 3 s later) and waited for, so nothing the command
 * started outlives it. Exit codes: the command's own; 124 timed out, 130 interrupted
 * (COMMAND_EXIT in hook.ts), 2 a bad env line, 127 sh could not start.
 *
 * A Node program (Node is on every server nexus deploys to): sh cannot wait for a child and for
 * EOF on its stdin at once without leaving a reader behind.
 */
const { spawn } = require("node:child_process");

const [command = "", timeoutArg] = process.argv.slice(1);
const timeoutMs = Number(timeoutArg) || 0;
/** @type {import("node:child_process").ChildProcess | undefined} */
let child;
let buffered = "";
let stopping = false;

/**
 * @param {string} why
 * @param {number} code
 */
const stop = (why, code) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`nexus: ${why}\n`);
  if (!child?.pid) process.exit(code);
  const group = -child.pid;
  /** @param {NodeJS.Signals | 0} name */
  const signal = (name) => {
    try {
      process.kill(group, name);
      return true;
    } catch {
      return false;
    }
  };
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

/** @param {Record<string, string>} env */
const start = (env) => {
  const started = spawn("sh", ["-c", command], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  child = started;
  started.on("error", (error) => {
    process.stderr.write(`${String(error.message)}\n`);
    process.exit(127);
  });
  started.on("exit", (code, signal) => {
    if (!stopping) process.exit(code === null ? 128 + (signal === "SIGKILL" ? 9 : 15) : code);
  });
  if (timeoutMs > 0) setTimeout(() => stop(`timed out after ${timeoutMs}ms`, 124), timeoutMs).unref();
};

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  if (child) return;
  buffered += chunk;
  const end = buffered.indexOf("\n");
  if (end < 0) return;
  /** @type {Record<string, string>} */
  let env = {};
  try {
    env = JSON.parse(buffered.slice(0, end));
  } catch {
    process.stderr.write("nexus: bad env line\n");
    process.exit(2);
  }
  start(env);
});
process.stdin.on("end", () => stop("interrupted", 130));
