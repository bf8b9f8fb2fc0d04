export interface ReleaseInfo {
  id: string;
  failed: boolean;
  /** When it was staged (seconds since the epoch; 0 if unknown). */
  stagedAt: number;
}

export interface ServerState {
  /** No deploy path yet: nothing was ever deployed. */
  missing: boolean;
  current?: string;
  releases: ReleaseInfo[];
  lock?: string;
  /** Left by a deploy or rollback that did not finish (killed): see `nexus recover`. */
  journal?: Journal;
}

export interface Journal {
  command: string;
  release: string;
  /** The release the server served before, if any. */
  previous: string | null;
  pid: number;
  host: string;
  time: string;
}

/** Parses the output of remote/commands inspect(). */
export function parseInspect(stdout: string): ServerState {
  const state: ServerState = { missing: false, releases: [] };
  for (const line of stdout.split("\n")) {
    if (line === "@missing") state.missing = true;
    else if (line.startsWith("@current ")) {
      const target = line.slice("@current ".length).trim();
      const id = target.replace(/^.*releases\//, "").replace(/\/+$/, "");
      if (id) state.current = id;
    } else if (line.startsWith("@release ")) {
      const [id, status, time] = line.slice("@release ".length).trim().split(" ");
      if (id) state.releases.push({ id, failed: status === "failed", stagedAt: Number(time) || 0 });
    } else if (line.startsWith("@lock ")) state.lock = line.slice("@lock ".length).trim();
    else if (line.startsWith("@journal ")) {
      try {
        state.journal = JSON.parse(line.slice("@journal ".length)) as Journal;
      } catch {
        // A torn journal still means an unfinished command.
        state.journal = {
          command: "unknown",
          release: "unknown",
          previous: null,
          pid: 0,
          host: "",
          time: "",
        };
      }
    }
  }
  // Oldest first: by staging time, then by id (ids start with a UTC timestamp).
  state.releases.sort((a, b) => a.stagedAt - b.stagedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return state;
}

/** The release to go back to: the newest good release staged before the current one. */
export function previousRelease(state: ServerState): string | undefined {
  const index = state.releases.findIndex((r) => r.id === state.current);
  const older = index >= 0 ? state.releases.slice(0, index) : state.releases;
  return older.filter((r) => !r.failed).at(-1)?.id;
}

/**
 * Releases to delete so that at most `keep` remain: failed ones first, then the oldest. The
 * protected ids (current, the rollback target) are never chosen.
 */
export function releasesToPrune(
  releases: readonly ReleaseInfo[],
  keep: number,
  protect: readonly string[],
): string[] {
  const prunable = releases.filter((r) => !protect.includes(r.id));
  const excess = releases.length - keep;
  if (excess <= 0) return [];
  const ordered = [...prunable.filter((r) => r.failed), ...prunable.filter((r) => !r.failed)];
  return ordered.slice(0, excess).map((r) => r.id);
}
