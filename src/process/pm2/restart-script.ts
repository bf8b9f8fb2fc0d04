import { scriptFile, withFunctions, withProgram } from "../../remote/script-file.js";
import type { ProcessInfo, RestartResult } from "../process-manager.js";

/**
 * The restart program (restart.cjs): run on the server with the server's own PM2, it lists,
 * deletes by pm id and starts the app in one process (~0.3 s instead of ~0.9 s for three `pm2`
 * calls), or, started with "wait", takes "go", "list", "save" and "stop NAME" on stdin.
 */
const PROGRAM = scriptFile(import.meta.url, "restart.cjs");

/** Finds the PM2 package behind the `pm2` on PATH (exit 127 when there is none). */
const FIND_PM2 = scriptFile(import.meta.url, "find-pm2.sh");

/**
 * $1 the app's name, $2 the release's ecosystem file, $3 "wait" to take commands on stdin, $4 the
 * deadline in ms for the restart (from "go" with "wait"), after which the program fails.
 */
export const RESTART_SCRIPT = withProgram(
  withFunctions(scriptFile(import.meta.url, "restart.sh"), FIND_PM2),
  PROGRAM,
);

export function parseRestart(stdout: string): RestartResult {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (!line) throw new Error("PM2 printed no result");
  const raw = JSON.parse(line) as {
    before?: ProcessInfo[] | null;
    after?: ProcessInfo[] | null;
    now?: unknown;
  };
  const list = (value: ProcessInfo[] | null | undefined) => (Array.isArray(value) ? value : []);
  const result: RestartResult = { before: list(raw.before), after: list(raw.after) };
  if (typeof raw.now === "number") result.serverNow = raw.now;
  return result;
}

/** A "save" reply of the prepared program: an error when PM2 could not write its dump. */
export function parseSaved(line: string): void {
  const raw = JSON.parse(line) as { saved?: boolean; error?: string };
  if (raw.saved !== true) throw new Error(`pm2 save failed: ${raw.error ?? "no answer"}`);
}

/** A "stop NAME" reply of the prepared program: an error when PM2 could not list the processes. */
export function parseStopped(line: string): void {
  const raw = JSON.parse(line) as { stopped?: number | null; error?: string };
  if (typeof raw.stopped !== "number")
    throw new Error(`PM2 could not stop the app: ${raw.error ?? "no answer"}`);
}

/** A "list" reply of the prepared program. */
export function parseList(line: string): ProcessInfo[] {
  const raw = JSON.parse(line) as { list?: ProcessInfo[] | null; error?: string };
  if (!Array.isArray(raw.list)) throw new Error(`PM2 could not list the app: ${raw.error ?? "no list"}`);
  return raw.list;
}

/**
 * $1 the app's name. `pm2 save` writes every env value to dump.pm2: with a private umask, and
 * the file made 0600 even when an older save left it readable.
 */
export const PERSIST_SCRIPT = scriptFile(import.meta.url, "persist.sh");

/**
 * $1 the app's name: its instances deleted by pm id (given a name it does not know, `pm2 delete`
 * falls back to a namespace of that name, and `all` means every app). $2 the deadline in ms.
 */
export const STOP_SCRIPT = withProgram(
  withFunctions(scriptFile(import.meta.url, "stop.sh"), FIND_PM2),
  PROGRAM,
);
