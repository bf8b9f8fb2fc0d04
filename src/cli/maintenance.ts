import type { Command } from "commander";
import { Fleet } from "../deploy/fleet.js";
import { breakLock, describeHolder, isStale } from "../deploy/lock.js";
import { recover } from "../deploy/recover.js";
import { listReleases } from "../deploy/releases.js";
import { readState } from "../deploy/state.js";
import { EXIT } from "../errors.js";
import { readConfig, whileInterruptible, withReporter } from "./context.js";
import { printResult } from "./result.js";
import { printTable } from "./table.js";

/** recover, unlock, releases: the commands for looking after a fleet between deploys. */
export function addMaintenanceCommands(program: Command, setExit: (code: number) => void): void {
  program
    .command("recover")
    .description(
      "after a killed deploy: put every server it touched back on its previous release, in rotation",
    )
    .option(
      "--force",
      "take over a lock whose holder may be alive (another machine or container, a reused pid): only when it is dead",
    )
    .addHelpText("after", "\nExample:\n  nexus recover")
    .action(async (opts: { force?: boolean }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          return whileInterruptible(reporter, (signal) =>
            recover(readConfig(global), {
              emit: (e) => reporter.emit(e),
              signal,
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              force: opts.force,
            }),
          );
        }),
      );
    });

  program
    .command("unlock")
    .description("remove the deploy lock from every server (only when its holder is gone)")
    .option(
      "--force",
      "remove a lock whose holder cannot be seen to be gone (another machine, or a container with this hostname)",
    )
    .addHelpText("after", "\nExamples:\n  nexus unlock\n  nexus unlock --force")
    .action(async (opts: { force?: boolean }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const config = readConfig(global);
          const emit = (e: Parameters<typeof reporter.emit>[0]) => reporter.emit(e);
          const fleet = await Fleet.open(
            config,
            config.servers.map((s) => s.name),
            { emit, ...global },
          );
          let refused = false;
          try {
            for (const host of fleet.hosts.values()) {
              const state = await readState(host);
              if (!state.lock) continue;
              if (state.journal) {
                emit({
                  type: "warn",
                  server: host.server.name,
                  message:
                    "an interrupted command left this server mid-change: use `nexus recover`, which also unlocks",
                });
                continue;
              }
              if (!isStale(state.lock) && !opts.force) {
                emit({
                  type: "error",
                  server: host.server.name,
                  message: `locked by ${describeHolder(state.lock)}, which may still run (it is not a process of this machine that has exited): wait for it, or pass --force if you know it is gone`,
                });
                refused = true;
                continue;
              }
              if (!(await breakLock(host, state.lock))) {
                emit({
                  type: "warn",
                  server: host.server.name,
                  message: "the lock changed meanwhile: left alone",
                });
                continue;
              }
              emit({
                type: "info",
                server: host.server.name,
                message: `removed the lock of ${describeHolder(state.lock)}`,
              });
            }
            return refused ? EXIT.failed : EXIT.ok;
          } finally {
            await fleet.close();
          }
        }),
      );
    });

  program
    .command("releases")
    .description("per server: the releases on disk, which is current and which a rollback would restore")
    .addHelpText("after", "\nExample:\n  nexus releases")
    .action(async () => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const rows = await listReleases(readConfig(global), { emit: (e) => reporter.emit(e), ...global });
          if (global.json) printResult({ command: "releases", rows });
          else {
            printTable(
              reporter,
              ["server", "release", "", "deployed at (UTC)", "by", "commit"],
              rows.map((r) => [r.server, r.id, r.mark, r.time, r.user, r.commit]),
            );
          }
          return EXIT.ok;
        }),
      );
    });
}
