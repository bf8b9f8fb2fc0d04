import type { Command } from "commander";
import { stillOpen } from "../balancer/balancer.js";
import type { SetExit } from "../cli/action.js";
import type { Config, ServerConfig } from "../config/load.js";
import { allServers, type Fleet } from "../deploy/fleet.js";
import { fleetOps } from "../deploy/fleet-ops.js";
import { recordHistory } from "../deploy/history.js";
import { PlanError } from "../deploy/plan.js";
import { EXIT } from "../errors.js";
import { capacityProblem, minInRotation } from "../rollout/capacity.js";
import { type ManualOptions, manualCommand, withServerLocked } from "./servers.js";

/** `nexus drain <server>`: out of rotation, in-flight requests finished, within the capacity guard. */
export function drainCommand(setExit: SetExit): Command {
  return manualCommand(setExit, {
    name: "drain",
    description: "take a server out of rotation and wait for its in-flight requests",
    force: "drain even if that leaves too few healthy servers in rotation",
    run: drainServer,
  });
}

export function drainServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  // Every server is connected: the capacity guard checks the others live.
  return withServerLocked(
    config,
    name,
    allServers(config),
    { ...options, command: "drain" },
    (fleet, server) => drainLocked(config, fleet, server, options),
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
  const states = await fleet.balancer.state(config.servers);
  const own = states.find((b) => b.server === name);
  if (!own?.present)
    throw new PlanError(
      `${name} (${server.upstream}) is not listed by the balancer on ${fleet.balancer.host}`,
    );
  if (!own.inRotation) {
    emit({ type: "info", server: name, message: "is already drained" });
    return EXIT.ok;
  }
  const floor = minInRotation(config);
  // The floor is 0 for a one-server fleet: draining the last server in rotation is still refused.
  const last = states.every((b) => b.server === name || !b.inRotation)
    ? `${name} is the last server in rotation: draining it leaves the balancer nowhere to send requests`
    : undefined;
  const problem =
    last ?? (await capacityProblem(config, fleetOps(fleet, config, emit), [name], floor, [], states));
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
