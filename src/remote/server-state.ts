import { stdoutOrThrow } from "../ssh/errors.js";
import { isValidReleaseId, type Layout } from "./layout.js";
import { parseLivePort } from "./live-port.js";
import { type RemoteOp, script } from "./op.js";
import { cmd } from "./quote.js";
import { scriptFile, withFunctions } from "./script-file.js";

/** A server's deploy state: releases on disk, `current`, the lock, the journal, the history. */

export interface ReleaseInfo {
  id: string;
  failed: boolean;
  /** When it was staged (seconds since the epoch; 0 if unknown). */
  stagedAt: number;
}

export interface Journal {
  command: string;
  release: string;
  /** The release the server served before, if any. */
  previous: string | null;
  /** Out of rotation before the command began (an operator's drain): recover leaves it so. */
  drained?: boolean;
  pid: number;
  host: string;
  time: string;
}

export interface ServerState {
  /** No deploy path yet: nothing was ever deployed. */
  missing: boolean;
  current?: string;
  releases: ReleaseInfo[];
  lock?: string;
  /** Left by a deploy or rollback that did not finish (killed): see `nexus recover`. */
  journal?: Journal;
  /** The port the surge strategy's process serves on (live-port.ts); none: never surged. */
  livePort?: number;
}

/**
 * $1 the deploy path. Prints "@current", "@release", "@lock", "@journal" and "@live-port" lines. Names outside
 * the release-id alphabet are skipped, and every value is one line, so no name can forge a line.
 */
export const INSPECT_SCRIPT = scriptFile(import.meta.url, "inspect.sh");

export function inspect(l: Layout): RemoteOp<ServerState> {
  return {
    what: "reading the deploy state",
    command: script(INSPECT_SCRIPT, l.base),
    parse: (result, server) => parseInspect(stdoutOrThrow(server, "reading the deploy state", result)),
  };
}

const TORN_JOURNAL: Journal = {
  command: "unknown",
  release: "unknown",
  previous: null,
  pid: 0,
  host: "",
  time: "",
};

/** Parses INSPECT_SCRIPT's output; ids that are not valid release ids are dropped. */
export function parseInspect(stdout: string): ServerState {
  const state: ServerState = { missing: false, releases: [] };
  for (const line of stdout.split("\n")) {
    if (line === "@missing") state.missing = true;
    else if (line.startsWith("@current ")) {
      const target = line.slice("@current ".length).trim();
      const id = target.replace(/^.*releases\//, "").replace(/\/+$/, "");
      if (isValidReleaseId(id)) state.current = id;
    } else if (line.startsWith("@release ")) {
      const [id, status, time] = line.slice("@release ".length).trim().split(" ");
      if (id && isValidReleaseId(id))
        state.releases.push({ id, failed: status === "failed", stagedAt: Number(time) || 0 });
    } else if (line.startsWith("@lock ")) state.lock = line.slice("@lock ".length).trim();
    else if (line.startsWith("@journal ")) state.journal = parseJournal(line.slice("@journal ".length));
    else if (line.startsWith("@live-port ")) state.livePort = parseLivePort(line.slice("@live-port ".length));
  }
  // Oldest first: by staging time, then by id (ids start with a UTC timestamp).
  state.releases.sort((a, b) => a.stagedAt - b.stagedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return state;
}

/** A torn or forged journal still means an unfinished command, but its ids are never trusted. */
export function parseJournal(text: string): Journal {
  try {
    const raw = JSON.parse(text) as Partial<Journal>;
    const id = (value: unknown) => (typeof value === "string" && isValidReleaseId(value) ? value : undefined);
    return {
      command: typeof raw.command === "string" ? raw.command : "unknown",
      release: id(raw.release) ?? "unknown",
      previous: id(raw.previous) ?? null,
      ...(raw.drained === true ? { drained: true } : {}),
      pid: Number(raw.pid) || 0,
      host: typeof raw.host === "string" ? raw.host : "",
      time: typeof raw.time === "string" ? raw.time : "",
    };
  } catch {
    return { ...TORN_JOURNAL };
  }
}

/**
 * Lock operations run under a mutex on the server (flock where it exists), so that checking a
 * lock's holder and removing it is one atomic step: a stale lock broken by two deploys at once
 * is broken once, and the lock one of them then takes is never deleted by the other.
 */
const MUTEX_FUNCTION = scriptFile(import.meta.url, "lock-mutex.sh");

/**
 * $1 state dir, $2 lock file, $3 holder. Prints @acquired, or @held and the holder. The holder is
 * written whole to a file of its own, then linked to the lock's name (which fails if a lock is
 * there): a write that fails (a full disk) leaves no empty lock behind, and an empty one (from
 * a version that wrote in place) is no holder: it is removed.
 */
export const LOCK_ACQUIRE_SCRIPT = withFunctions(
  scriptFile(import.meta.url, "lock-acquire.sh"),
  MUTEX_FUNCTION,
);

/** $1 state dir, $2 lock file, $3 token. Removes the lock only if it still holds that token. */
export const LOCK_REMOVE_SCRIPT = withFunctions(
  scriptFile(import.meta.url, "lock-remove.sh"),
  MUTEX_FUNCTION,
);

export type LockAttempt = { acquired: true } | { acquired: false; holder: string };

export function lockAcquire(l: Layout, holder: string): RemoteOp<LockAttempt> {
  return {
    what: "taking the deploy lock",
    command: script(LOCK_ACQUIRE_SCRIPT, l.state, l.lock, holder),
    parse: (result, server) => {
      const out = stdoutOrThrow(server, "taking the deploy lock", result);
      if (out.includes("@acquired")) return { acquired: true };
      return { acquired: false, holder: out.replace(/^@held\s*/m, "").trim() };
    },
  };
}

export interface LockedState {
  attempt: LockAttempt;
  /** The state read under the lock just taken; undefined when not taken, or the read failed. */
  state?: ServerState;
}

/**
 * Takes the lock and reads the state under it in one exchange (the read runs once the lock is
 * held; with another holder, what it read is not used).
 */
export function lockAndInspect(l: Layout, holder: string): RemoteOp<LockedState> {
  return {
    what: "taking the deploy lock and reading the deploy state",
    command: `${script(LOCK_ACQUIRE_SCRIPT, l.state, l.lock, holder)} && ${script(INSPECT_SCRIPT, l.base)}`,
    parse: (result, server) => {
      const held = /^@held (.*)$/m.exec(result.stdout);
      if (held) return { attempt: { acquired: false, holder: (held[1] ?? "").trim() } };
      if (!/^@acquired$/m.test(result.stdout)) {
        stdoutOrThrow(server, "taking the deploy lock", result);
        throw new Error(`${server}: taking the deploy lock: no answer from the lock script`);
      }
      // Taken; a read that failed is done again when the state is needed.
      return {
        attempt: { acquired: true },
        ...(result.code === 0 ? { state: parseInspect(result.stdout) } : {}),
      };
    },
  };
}

/**
 * Removes the lock if it still holds `token`: ours when releasing, or a stale holder's when
 * breaking it (never a lock taken since it was inspected). True when it was removed.
 */
export function lockRemove(l: Layout, token: string): RemoteOp<boolean> {
  return {
    what: "removing the deploy lock",
    command: script(LOCK_REMOVE_SCRIPT, l.state, l.lock, token),
    parse: (result, server) => stdoutOrThrow(server, "removing the deploy lock", result).includes("@removed"),
  };
}

export function removeJournal(l: Layout): RemoteOp<void> {
  return {
    what: "removing the journal",
    command: cmd("rm", "-f", l.journal),
    parse: (result, server) => void stdoutOrThrow(server, "removing the journal", result),
  };
}

/** $1 history file, $2 one JSON line. */
export const APPEND_HISTORY_SCRIPT = scriptFile(import.meta.url, "append-history.sh");

export function appendHistory(l: Layout, entry: Record<string, unknown>): RemoteOp<void> {
  return {
    what: "recording the history",
    command: script(APPEND_HISTORY_SCRIPT, l.history, JSON.stringify(entry)),
    parse: (result, server) => void stdoutOrThrow(server, "recording the history", result),
  };
}

export interface HistoryEntry {
  time?: string;
  event?: string;
  release?: string;
  previous?: string | null;
  result?: string;
  user?: string;
  from?: string;
  commit?: string | null;
}

export function readHistory(l: Layout, lines = 500): RemoteOp<HistoryEntry[]> {
  return {
    what: "reading the history",
    command: `tail -n ${Number(lines)} -- ${cmd(l.history)} 2>/dev/null || true`,
    parse: (result) => parseHistory(result.stdout),
  };
}

/** Parses history.jsonl, skipping torn or foreign lines. */
export function parseHistory(text: string): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as HistoryEntry);
    } catch {
      // an interrupted append leaves a partial line: ignore it
    }
  }
  return entries;
}
