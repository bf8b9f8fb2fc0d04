import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { printTable } from "../cli/table.js";
import type { Config } from "../config/load.js";
import { allServers, withFleet } from "../deploy/fleet.js";
import { previousRelease, readState } from "../deploy/state.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";
import { runOp } from "../remote/op.js";
import { readHistory } from "../remote/server-state.js";

/** `nexus releases`: per server, the releases on disk, which is current and which a rollback restores. */
export function releasesCommand(setExit: SetExit): Command {
  return new Command("releases")
    .description("per server: the releases on disk, which is current and which a rollback would restore")
    .addHelpText("after", examples("nexus releases"))
    .action(
      action(setExit, async ({ reporter, global }) => {
        const rows = await listReleases(readConfig(global), { emit: (e) => reporter.emit(e), ...global });
        if (global.json) printResult({ command: "releases", rows });
        else
          printTable(
            reporter,
            ["server", "release", "", "deployed at (UTC)", "by", "commit"],
            rows.map((r) => [r.server, r.id, r.mark, r.time, r.user, r.commit]),
          );
        return EXIT.ok;
      }),
    );
}

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
  return withFleet(config, allServers(config), { ...options, quiet: true }, async (fleet) => {
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
  });
}
