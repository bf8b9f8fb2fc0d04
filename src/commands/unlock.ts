import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config } from "../config/load.js";
import { allServers, type Host, withFleet } from "../deploy/fleet.js";
import { breakLock, describeHolder, isStale } from "../deploy/lock.js";
import { readState } from "../deploy/state.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";

/** `nexus unlock`: the deploy lock removed from every server whose lock holder is gone. */
export function unlockCommand(setExit: SetExit): Command {
  return new Command("unlock")
    .description("remove the deploy lock from every server (only when its holder is gone)")
    .option(
      "--force",
      "remove a lock whose holder cannot be seen to be gone (another machine, or a container with this hostname)",
    )
    .addHelpText("after", examples("nexus unlock", "nexus unlock --force"))
    .action(
      action(setExit, ({ reporter, global }, flags: { force?: boolean }) =>
        unlock(readConfig(global), { emit: (e) => reporter.emit(e), ...global, force: flags.force }),
      ),
    );
}

async function unlock(
  config: Config,
  options: { emit: Emit; acceptNew?: boolean; verbose?: boolean; force?: boolean },
): Promise<number> {
  return withFleet(config, allServers(config), options, async (fleet) => {
    let refused = false;
    for (const host of fleet.hosts.values()) {
      if ((await unlockHost(host, options)) === "refused") refused = true;
    }
    return refused ? EXIT.failed : EXIT.ok;
  });
}

/** One server's lock: removed if its holder is gone (or --force), else said why not. */
async function unlockHost(
  host: Host,
  options: { emit: Emit; force?: boolean },
): Promise<"none" | "removed" | "refused" | "left"> {
  const { emit } = options;
  const server = host.server.name;
  const state = await readState(host);
  if (!state.lock) return "none";
  if (state.journal) {
    emit({
      type: "warn",
      server,
      message: `an interrupted command left this server mid-change: use \`${nexusCommand("recover")}\`, which also unlocks`,
    });
    return "left";
  }
  if (!isStale(state.lock) && !options.force) {
    emit({
      type: "error",
      server,
      message: `locked by ${describeHolder(state.lock)}, which may still run (it is not a process of this machine that has exited): wait for it, or pass --force if you know it is gone`,
    });
    return "refused";
  }
  if (!(await breakLock(host, state.lock))) {
    emit({ type: "warn", server, message: "the lock changed meanwhile: left alone" });
    return "left";
  }
  emit({ type: "info", server, message: `removed the lock of ${describeHolder(state.lock)}` });
  return "removed";
}
