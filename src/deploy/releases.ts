import type { Config } from "../config/load.js";
import * as remote from "../remote/commands.js";
import type { Emit } from "./events.js";
import { Fleet } from "./fleet.js";
import { readState } from "./host-ops.js";
import { previousRelease } from "./state.js";

export interface ReleaseRow {
  server: string;
  id: string;
  /** current, previous (the rollback target), failed, or empty */
  mark: string;
  time: string;
  user: string;
  commit: string;
}

interface HistoryEntry {
  time?: string;
  event?: string;
  release?: string;
  user?: string;
  from?: string;
  commit?: string | null;
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

/** `nexus releases`: per server, the releases on disk with who deployed them and when. */
export async function listReleases(
  config: Config,
  options: { emit: Emit; acceptNew?: boolean; verbose?: boolean },
) {
  const fleet = await Fleet.open(
    config,
    config.servers.map((s) => s.name),
    { ...options, quiet: true },
  );
  try {
    const perServer = await Promise.all(
      config.servers.map(async (s): Promise<ReleaseRow[]> => {
        const host = fleet.host(s.name);
        const [state, history] = await Promise.all([
          readState(host),
          host.session.run(remote.readHistory(host.layout)).then(parseHistory),
        ]);
        const previous = previousRelease(state);
        return state.releases
          .map((r) => {
            const deployed = history.filter((h) => h.release === r.id && h.event === "deploy").at(-1);
            return {
              server: s.name,
              id: r.id,
              mark:
                r.id === state.current
                  ? "current"
                  : r.id === previous
                    ? "previous"
                    : r.failed
                      ? "failed"
                      : "",
              time: deployed?.time?.replace("T", " ").slice(0, 19) ?? "",
              user: deployed ? `${deployed.user ?? "?"}@${deployed.from ?? "?"}` : "",
              commit: deployed?.commit ?? "",
            };
          })
          .reverse();
      }),
    );
    return perServer.flat();
  } finally {
    fleet.close();
  }
}
