import { Command } from "commander";
import { stillOpen } from "../balancer/balancer.js";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import type { Config, ServerConfig } from "../config/load.js";
import { withLocks } from "../deploy/engine.js";
import { allServers, type Fleet, withFleet } from "../deploy/fleet.js";
import { fleetOps } from "../deploy/fleet-ops.js";
import { recordHistory } from "../deploy/history.js";
import { newHolder } from "../deploy/lock.js";
import { PlanError } from "../deploy/plan.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";
import { capacityProblem, minInRotation } from "../rollout/capacity.js";
import { serverNamed } from "./servers.js";

/** What `nexus drain` and `nexus enable` take from the command line. */
export interface ManualOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  force?: boolean;
}

/** `nexus drain <server>`: out of rotation, in-flight requests finished, within the capacity guard. */
export function drainCommand(setExit: SetExit): Command {
  return new Command("drain")
    .argument("<server>")
    .description("take a server out of rotation and wait for its in-flight requests")
    .option("--force", "drain even if that leaves too few healthy servers in rotation")
    .addHelpText("after", examples("nexus drain nexus-beta"))
    .action(
      action(setExit, ({ reporter, global }, name: string, flags: { force?: boolean }) =>
        drainServer(readConfig(global), name, {
          emit: (e) => reporter.emit(e),
          ...global,
          force: flags.force,
        }),
      ),
    );
}

export async function drainServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  const server = serverNamed(config, name);
  // Every server: the capacity guard checks the others live.
  return withFleet(config, allServers(config), options, (fleet) =>
    // The server's deploy lock: a drain never interleaves with a deploy's own changes to it.
    withLocks(fleet, [fleet.host(name)], newHolder("drain"), options.emit, 0, () =>
      drainLocked(config, fleet, server, options),
    ),
  );
}

async function drainLocked(
  config: Config,
  fleet: Fleet,
  server: ServerConfig,
  options: ManualOptions,
): Promise<number> {
  const { emit } = options;
  const name = server.name;
  const own = (await fleet.balancer.state(config.servers)).find((b) => b.server === name);
  if (!own?.present)
    throw new PlanError(
      `${name} (${server.upstream}) is not listed by the balancer on ${fleet.balancer.host}`,
    );
  if (!own.inRotation) {
    emit({ type: "info", server: name, message: "is already drained" });
    return EXIT.ok;
  }
  const floor = minInRotation(config);
  const problem = await capacityProblem(config, fleetOps(fleet, config, emit), [name], floor);
  if (problem) {
    if (!options.force) throw new PlanError(`${problem}; pass --force to drain anyway`);
    emit({ type: "warn", message: `${problem}: --force given, draining anyway` });
  }
  emit({ type: "step", server: name, step: "drain", status: "start" });
  const started = Date.now();
  await fleet.balancer.apply({
    drain: [server],
    ...(options.force ? {} : { keepInRotation: { servers: config.servers, min: floor } }),
  });
  const wait = await fleet.balancer.waitDrained(server, config.balancer.drainTimeout);
  await fleet.balancer.settle?.();
  const { drained, detail } = wait;
  if (!drained) emit({ type: "warn", server: name, message: `${stillOpen(wait)} after the drain timeout` });
  emit({
    type: "step",
    server: name,
    step: "drain",
    status: "done",
    ms: Date.now() - started,
    message: drained && detail ? `out of rotation: ${detail}` : "out of rotation",
  });
  await recordHistory(fleet.host(name), "drain", {});
  return EXIT.ok;
}
