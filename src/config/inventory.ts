import { spawnSync } from "node:child_process";
import { isPlainObject } from "./layers.js";
import {
  CREDENTIAL_URL,
  looksSecret,
  MIN_SECRET_CHARS,
  type Redact,
  redactorFor,
  secretForms,
} from "./secrets.js";

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

/**
 * What a command printed is quoted in an error up to this: its first lines (a cloud CLI's error
 * may run to pages), and this many characters of them.
 */
const QUOTE_LINES = 5;
const QUOTE_MAX = 300;

export type InventoryResult = { servers: unknown[] } | { problem: string };

/**
 * Quotes what a command printed: its secrets masked (`redact`), trimmed, its first lines as one
 * JSON string, cut when long, and how many lines were left out. Masked before it is cut, so a
 * secret is never shown in part.
 */
export function quoteOutput(text: string, redact: Redact = (t) => t): string {
  const lines = redact(text).trim().split(/\r?\n/);
  if (lines.length === 1 && lines[0] === "") return "nothing";
  const first = lines.slice(0, QUOTE_LINES).join("\n");
  const shown = first.length > QUOTE_MAX ? `${first.slice(0, QUOTE_MAX)}…` : first;
  const more = lines.length - QUOTE_LINES;
  return `${JSON.stringify(shown)}${more > 0 ? ` (and ${more} more line${more === 1 ? "" : "s"})` : ""}`;
}

/** `"API_TOKEN": "…"` in JSON, `API_TOKEN=…` in an env dump: the value of a secret-looking key. */
const KEYED_VALUE =
  /("([A-Za-z_][A-Za-z0-9_.-]*)"\s*:\s*")((?:[^"\\]|\\.)*)"|\b([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g;

/**
 * What an inventory's output must not show: the config's secrets (every `{"fromEnv": …}` value,
 * env values under secret-looking keys or holding a credential URL, webhook URLs: as `nexus config`
 * masks them), nexus's own SSH credentials from the environment, and whatever the output itself
 * holds under a secret-looking key (`"DB_PASSWORD": "…"`, `AWS_SECRET_ACCESS_KEY=…`). `data` is
 * the config as read, before its servers are known.
 */
export function inventoryRedactor(data: unknown, env: NodeJS.ProcessEnv): Redact {
  const long = new Set<string>();
  const short = new Set<string>();
  const add = (value: string) => {
    for (const form of secretForms(value)) {
      if (form.length >= MIN_SECRET_CHARS) long.add(form);
      else if (form !== "") short.add(form);
    }
  };
  const fromEnv = (value: unknown): string | undefined =>
    isPlainObject(value) && typeof value.fromEnv === "string" ? env[value.fromEnv] : undefined;
  const walk = (value: unknown, envMap: boolean): void => {
    const read = fromEnv(value);
    if (read !== undefined) add(read);
    else if (Array.isArray(value)) for (const item of value) walk(item, false);
    else if (isPlainObject(value))
      for (const [key, item] of Object.entries(value)) {
        if (envMap && typeof item === "string" && (looksSecret(key) || CREDENTIAL_URL.test(item))) add(item);
        else walk(item, key === "env");
      }
  };
  walk(data, false);
  if (isPlainObject(data) && Array.isArray(data.notify))
    for (const target of data.notify)
      if (isPlainObject(target) && typeof target.url === "string") add(target.url);
  for (const name of ["NEXUS_SSH_KEY", "NEXUS_SSH_PASSPHRASE", "NEXUS_SSH_PASSWORD"]) {
    const value = env[name];
    if (value) add(value);
  }
  const known = redactorFor([...long], [...short]);
  return (text) =>
    known(text).replace(KEYED_VALUE, (whole, open, jsonKey, jsonValue, envKey, envValue) => {
      if (jsonKey !== undefined) return looksSecret(jsonKey) && jsonValue !== "" ? `${open}***"` : whole;
      return looksSecret(envKey) && envValue !== "" ? `${envKey}=***` : whole;
    });
}

/** Reads a command's stdout as a server list. Pure. */
export function parseInventory(stdout: string, redact?: Redact): InventoryResult {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    // JSON.parse's message quotes the text again, cut at a line break: what was printed says more.
    return { problem: `its output is not JSON; it printed ${quoteOutput(stdout, redact)}` };
  }
  const list = isPlainObject(data) && "servers" in data ? data.servers : data;
  if (!Array.isArray(list))
    return {
      problem: `expected a JSON array of servers (or {"servers": [...]}), it printed ${quoteOutput(stdout, redact)}`,
    };
  if (list.length === 0) return { problem: "it printed an empty list of servers" };
  return { servers: list };
}

/** Why a finished command's result is not a server list (its output quoted through `redact`), or the list. */
export function inventoryFrom(
  result: {
    status: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    error?: Error;
    timeout: number;
  },
  redact?: Redact,
): InventoryResult {
  const said = result.stderr.trim() ? `; stderr: ${quoteOutput(result.stderr, redact)}` : "";
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT")
    return { problem: `it did not finish within ${result.timeout / 1000}s${said}` };
  if (result.error) return { problem: `it could not be run (${result.error.message})` };
  if (result.signal) return { problem: `it was killed by ${result.signal}${said}` };
  if (result.status !== 0) return { problem: `it exited with code ${result.status}${said}` };
  return parseInventory(result.stdout, redact);
}

/**
 * Runs the command (in `cwd`, with nexus's environment) and reads its server list; an error quotes
 * its output with `redact` applied.
 */
export function runInventory(
  source: InventorySource,
  cwd: string,
  env: NodeJS.ProcessEnv,
  redact?: Redact,
): InventoryResult {
  const run = spawnSync("/bin/sh", ["-c", source.fromCommand], {
    cwd,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: source.timeout,
    killSignal: "SIGKILL",
    maxBuffer: 32 * 1024 * 1024,
  });
  return inventoryFrom(
    {
      status: run.status,
      signal: run.signal,
      stdout: run.stdout ?? "",
      stderr: run.stderr ?? "",
      error: run.error,
      timeout: source.timeout,
    },
    redact,
  );
}
