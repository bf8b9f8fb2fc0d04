import { spawnSync } from "node:child_process";
import { isPlainObject } from "./layers.js";

/**
 * `"servers": {"fromCommand": "./inventory.sh staging"}`: the server list is what a local command
 * prints (a cloud CLI piped through jq, an inventory script). The command runs under `sh -c` in
 * the config's directory, stdin closed, and must print a JSON array of server entries (or an
 * object whose `servers` is one). Whatever goes wrong names the command and what it printed.
 */

export interface InventorySource {
  fromCommand: string;
  /** Milliseconds the command may run. */
  timeout: number;
}

/** What a command printed that is too long to quote whole in an error is cut to this. */
const QUOTE_MAX = 300;

export type InventoryResult = { servers: unknown[] } | { problem: string };

/** Quotes what a command printed: trimmed, one line per line, cut when long. */
export function quoteOutput(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return "nothing";
  const cut = trimmed.length > QUOTE_MAX ? `${trimmed.slice(0, QUOTE_MAX)}…` : trimmed;
  return JSON.stringify(cut);
}

/** Reads a command's stdout as a server list. Pure. */
export function parseInventory(stdout: string): InventoryResult {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    // JSON.parse's message quotes the text again, cut at a line break: what was printed says more.
    return { problem: `its output is not JSON; it printed ${quoteOutput(stdout)}` };
  }
  const list = isPlainObject(data) && "servers" in data ? data.servers : data;
  if (!Array.isArray(list))
    return {
      problem: `expected a JSON array of servers (or {"servers": [...]}), it printed ${quoteOutput(stdout)}`,
    };
  if (list.length === 0) return { problem: "it printed an empty list of servers" };
  return { servers: list };
}

/** Why a finished command's result is not a server list, or the list. */
export function inventoryFrom(result: {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  error?: Error;
  timeout: number;
}): InventoryResult {
  const said = result.stderr.trim() ? `; stderr: ${quoteOutput(result.stderr)}` : "";
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT")
    return { problem: `it did not finish within ${result.timeout / 1000}s${said}` };
  if (result.error) return { problem: `it could not be run (${result.error.message})` };
  if (result.signal) return { problem: `it was killed by ${result.signal}${said}` };
  if (result.status !== 0) return { problem: `it exited with code ${result.status}${said}` };
  return parseInventory(result.stdout);
}

/** Runs the command (in `cwd`, with nexus's environment) and reads its server list. */
export function runInventory(source: InventorySource, cwd: string, env: NodeJS.ProcessEnv): InventoryResult {
  const run = spawnSync("/bin/sh", ["-c", source.fromCommand], {
    cwd,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: source.timeout,
    killSignal: "SIGKILL",
    maxBuffer: 32 * 1024 * 1024,
  });
  return inventoryFrom({
    status: run.status,
    signal: run.signal,
    stdout: run.stdout ?? "",
    stderr: run.stderr ?? "",
    error: run.error,
    timeout: source.timeout,
  });
}
