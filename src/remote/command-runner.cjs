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
 * The command's output reaches the channel through this program, never directly: a background
 * child the command leaves behind (`warm-cache &`) holds only a pipe to it, not the SSH channel.
 * When the shell exits, whatever it left running in its group is reported ("nexus: the command
 * exited (0) and left running: pid (name)"). The program ends once the command's output is
 * closed; while leftovers keep it open, the timeout still counts, and at the timeout the group is
 * stopped as for any timeout. So the timeout bounds the channel, not only the shell (sshd keeps a
 * channel open while anything holds its stdout: a 2 s hook once held a deploy for as long as its
 * child lived).
 *
 * A Node program (Node is on every server nexus deploys to): sh cannot wait for a child and for
 * EOF on its stdin at once without leaving a reader behind.
 */
const { spawn } = require("node:child_process");
const fs = require("node:fs");

const [command = "", timeoutArg] = process.argv.slice(1);
const timeoutMs = Number(timeoutArg) || 0;
/** @type {import("node:child_process").ChildProcess | undefined} */
let child;
let buffered = "";
let stopping = false;
/** The shell's exit code, once it exited. @type {number | undefined} */
let exited;

/** @param {NodeJS.Signals | 0} name a signal for the command's whole process group; false when none is left */
const signal = (name) => {
  if (!child?.pid) return false;
  try {
    process.kill(-child.pid, name);
    return true;
  } catch {
    return false;
  }
};

/** The processes still in the command's group (Linux /proc): "pid (name)" each. */
const leftovers = () => {
  /** @type {string[]} */
  const found = [];
  /** @type {string[]} */
  let names = [];
  try {
    names = fs.readdirSync("/proc");
  } catch {}
  for (const name of names) {
    if (String(Number(name)) !== name) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so from the last ")".
    const close = stat.lastIndexOf(")");
    if (Number(stat.slice(close + 2).split(" ")[2]) === child?.pid)
      found.push(`${name} (${stat.slice(stat.indexOf("(") + 1, close)})`);
  }
  return found;
};

/**
 * @param {string} why
 * @param {number} code
 */
const stop = (why, code) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`nexus: ${why}\n`);
  if (!child?.pid) process.exit(code);
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
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child = started;
  started.stdout.on("data", (chunk) => process.stdout.write(chunk));
  started.stderr.on("data", (chunk) => process.stderr.write(chunk));
  started.on("error", (error) => {
    process.stderr.write(`${String(error.message)}\n`);
    process.exit(127);
  });
  started.on("exit", (code, signalName) => {
    exited = code === null ? 128 + (signalName === "SIGKILL" ? 9 : 15) : code;
    if (stopping || !signal(0)) return;
    const left = leftovers();
    process.stderr.write(
      `nexus: the command exited (${exited}) and left running: ${left.join(", ") || "processes of its group"}\n`,
    );
  });
  // Its output closed and the shell gone: done, whatever it left running with other output.
  started.on("close", () => {
    if (!stopping) process.exit(exited);
  });
  const timedOut = () =>
    stop(
      `timed out after ${timeoutMs}ms${exited === undefined ? "" : `: the command had exited (${exited}), but what it left running kept its output open`}`,
      124,
    );
  if (timeoutMs > 0) setTimeout(timedOut, timeoutMs).unref();
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
