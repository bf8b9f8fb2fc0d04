import type { Command } from "commander";
import type { SetExit } from "../cli/action.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Fleet } from "../deploy/fleet.js";
import { checkHealth, readServingPort } from "../deploy/health-check.js";
import { recordHistory } from "../deploy/history.js";
import { EXIT } from "../errors.js";
import { type ManualOptions, manualCommand, withServerLocked } from "./servers.js";

/** `nexus enable <server>`: back in rotation, only once its health check passes. */
export function enableCommand(setExit: SetExit): Command {
  return manualCommand(setExit, {
    name: "enable",
    description: "put a server back in rotation once its health check passes",
    force: "enable even if the health check fails",
    run: enableServer,
  });
}

export function enableServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  return withServerLocked(config, name, [name], { ...options, command: "enable" }, (fleet, server) =>
    enableLocked(config, fleet, server, options),
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
  // A server the surge strategy left on app.surgePort is checked there.
  const gate = await checkHealth(host, config, await readServingPort(host, config));
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
