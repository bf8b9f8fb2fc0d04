import { spawn } from "node:child_process";
import type { Config } from "../config/load.js";
import type { Emit, HookName } from "../events/events.js";
import { COMMAND_EXIT, COMMAND_SCRIPT, envLine } from "../remote/hook.js";
import { script } from "../remote/op.js";
import { secretRedactor } from "../report/redact.js";
import { lineSplitter } from "../util/lines.js";
import { buildEnv } from "./build-env.js";
import type { Host } from "./fleet.js";

export interface CommandOnServer {
  /** The directory it runs in (a release, or `current`). */
  cwd: string;
  /** The user's shell text, run by `sh -c`. */
  command: string;
  env: Record<string, string>;
  /** 0: no limit. */
  timeoutMs: number;
  signal?: AbortSignal;
  onLine(line: string, stream: "out" | "err"): void;
}

/**
 * Runs the user's shell command on a server in its own process group: the env goes over stdin,
 * an abort (Ctrl-C) or the timeout stops the whole group. Resolves with the exit code.
 */
export async function runOnServer(host: Host, run: CommandOnServer): Promise<number | null> {
  const out = lineSplitter((line) => run.onLine(line, "out"));
  const err = lineSplitter((line) => run.onLine(line, "err"));
  try {
    return await host.session.stream(script(COMMAND_SCRIPT, run.cwd, run.command, run.timeoutMs), {
      stdin: envLine(run.env),
      signal: run.signal,
      onStdout: (chunk) => out.push(chunk),
      onStderr: (chunk) => err.push(chunk),
    });
  } finally {
    out.flush();
    err.flush();
  }
}

export interface HookResult {
  ok: boolean;
  /** Why it failed: "exit 3", "timed out after 30s", "interrupted". */
  reason?: string;
}

function describeExit(code: number | null, timeoutMs: number, aborted: boolean): string {
  if (aborted) return "interrupted";
  if (code === COMMAND_EXIT.timeout) return `timed out after ${timeoutMs / 1000}s (hooks.timeout)`;
  return code === null ? "killed by a signal" : `exit ${code}`;
}

/** A hook on a server: its output in the log (secrets masked), start and end as events. */
export async function runServerHook(
  host: Host,
  hook: HookName,
  config: Config,
  options: { cwd: string; env: Record<string, string>; emit: Emit; signal?: AbortSignal },
): Promise<HookResult> {
  const command = config.hooks[hook];
  if (!command) return { ok: true };
  const { emit } = options;
  const server = host.server.name;
  const redact = secretRedactor(config);
  const started = Date.now();
  emit({ type: "hook", hook, server, status: "start", message: command });
  let result: HookResult;
  try {
    const code = await runOnServer(host, {
      cwd: options.cwd,
      command,
      env: options.env,
      timeoutMs: config.hooks.timeout,
      signal: options.signal,
      onLine: (line, stream) => {
        emit({ type: "hook", hook, server, status: "output", message: redact(line) });
        // COMMAND_SCRIPT's report of what the hook's shell left running: said louder than output.
        if (stream === "err" && line.startsWith("nexus: the command exited ("))
          emit({ type: "warn", server, message: `hooks.${hook}: ${redact(line.slice("nexus: ".length))}` });
      },
    });
    result =
      code === 0 && !options.signal?.aborted
        ? { ok: true }
        : { ok: false, reason: describeExit(code, config.hooks.timeout, !!options.signal?.aborted) };
  } catch (error) {
    result = { ok: false, reason: redact((error as Error).message) };
  }
  emit({
    type: "hook",
    hook,
    server,
    status: result.ok ? "done" : "fail",
    ms: Date.now() - started,
    message: result.reason,
  });
  return result;
}

/**
 * afterDeploy / afterFailure: on this machine, in the app's directory, with nexus's environment
 * (less the deploy key and its passphrase) plus NEXUS_RELEASE, NEXUS_RESULT and NEXUS_SUMMARY (the summary rows as JSON).
 */
export async function runLocalHook(
  hook: "afterDeploy" | "afterFailure",
  config: Config,
  options: {
    release: string;
    result: string;
    summary: unknown;
    emit: Emit;
    signal?: AbortSignal;
    env?: NodeJS.ProcessEnv;
  },
): Promise<HookResult> {
  const command = config.hooks[hook];
  if (!command) return { ok: true };
  const { emit } = options;
  const redact = secretRedactor(config);
  const timeoutMs = config.hooks.timeout;
  const started = Date.now();
  emit({ type: "hook", hook, status: "start", message: command });
  const result = await new Promise<HookResult>((resolve) => {
    const child = spawn("sh", ["-c", command], {
      cwd: config.app.root,
      env: {
        // Without the deploy key, as the build: a notification script needs none of it.
        ...buildEnv(config.ssh, options.env ?? process.env),
        NEXUS_RELEASE: options.release,
        NEXUS_RESULT: options.result,
        NEXUS_SUMMARY: JSON.stringify(options.summary),
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const show = lineSplitter((line) =>
      emit({ type: "hook", hook, status: "output", message: redact(line) }),
    );
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => show.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => show.push(chunk));
    let stopped: string | undefined;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    let kill: NodeJS.Timeout | undefined;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      signalGroup("SIGTERM");
      // A process that ignores SIGTERM would hold the pipes, and this command, forever.
      kill = setTimeout(() => signalGroup("SIGKILL"), 3000);
    };
    const timer = setTimeout(() => stop(`timed out after ${timeoutMs / 1000}s (hooks.timeout)`), timeoutMs);
    const onAbort = () => stop("interrupted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: error.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(kill);
      options.signal?.removeEventListener("abort", onAbort);
      show.flush();
      if (stopped) resolve({ ok: false, reason: stopped });
      else if (code === 0) resolve({ ok: true });
      else resolve({ ok: false, reason: code === null ? `killed by ${signal}` : `exit ${code}` });
    });
  });
  emit({
    type: "hook",
    hook,
    status: result.ok ? "done" : "fail",
    ms: Date.now() - started,
    message: result.reason,
  });
  return result;
}
