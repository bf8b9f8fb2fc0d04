import type { Config } from "../config/load.js";
import { Fleet } from "../deploy/fleet.js";
import { previousRelease, readState } from "../deploy/state.js";
import type { Emit } from "../events/events.js";
import { runOp } from "../remote/op.js";
import { readHistory } from "../remote/server-state.js";

export interface ReleaseRow {
  server: string;
  id: string;
  /** current, previous (the rollback target), failed, or empty */
  mark: string;
  time: string;
  user: string;
  commit: string;
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
          runOp(host.session, readHistory(host.layout)),
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
    await fleet.close();
  }
}
