import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import type { Config, ServerConfig } from "../config/load.js";
import { withLocks } from "../deploy/engine.js";
import { type Fleet, withFleet } from "../deploy/fleet.js";
import { checkHealth } from "../deploy/health-check.js";
import { recordHistory } from "../deploy/history.js";
import { newHolder } from "../deploy/lock.js";
import { EXIT } from "../errors.js";
import type { ManualOptions } from "./drain.js";
import { serverNamed } from "./servers.js";

/** `nexus enable <server>`: back in rotation, only once its health check passes. */
export function enableCommand(setExit: SetExit): Command {
  return new Command("enable")
    .argument("<server>")
    .description("put a server back in rotation once its health check passes")
    .option("--force", "enable even if the health check fails")
    .addHelpText("after", examples("nexus enable nexus-beta"))
    .action(
      action(setExit, ({ reporter, global }, name: string, flags: { force?: boolean }) =>
        enableServer(readConfig(global), name, {
          emit: (e) => reporter.emit(e),
          ...global,
          force: flags.force,
        }),
      ),
    );
}

export async function enableServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  const server = serverNamed(config, name);
  return withFleet(config, [name], options, (fleet) =>
    withLocks(fleet, [fleet.host(name)], newHolder("enable"), options.emit, 0, () =>
      enableLocked(config, fleet, server, options),
    ),
  );
}

async function enableLocked(
  config: Config,
  fleet: Fleet,
  server: ServerConfig,
  options: ManualOptions,
): Promise<number> {
  const { emit } = options;
  const name = server.name;
  const host = fleet.host(name);
  emit({ type: "step", server: name, step: "gate", status: "start" });
  const gate = await checkHealth(host, config);
  if (!gate.ok) {
    emit({ type: "step", server: name, step: "gate", status: "fail", message: gate.reason });
    if (!options.force) {
      emit({
        type: "error",
        server: name,
        message: "not healthy: left out of rotation (pass --force to enable anyway)",
      });
      return EXIT.failed;
    }
  } else emit({ type: "step", server: name, step: "gate", status: "done", ms: gate.ms });
  emit({ type: "step", server: name, step: "enable", status: "start" });
  await fleet.balancer.apply({ enable: [server] });
  await fleet.balancer.settle?.();
  emit({ type: "step", server: name, step: "enable", status: "done", message: "in rotation" });
  await recordHistory(host, "enable", {});
  return EXIT.ok;
}
