import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import type { Config, ServerConfig } from "../config/load.js";
import { withLocks } from "../deploy/engine.js";
import { type Fleet, type FleetOptions, withFleet } from "../deploy/fleet.js";
import { newHolder } from "../deploy/lock.js";
import { PlanError } from "../deploy/plan.js";
import type { Emit } from "../events/events.js";

/** The server a command names (`nexus drain web1`): a usage error naming the valid ones otherwise. */
export function serverNamed(config: Config, name: string): ServerConfig {
  const server = config.servers.find((s) => s.name === name);
  if (!server) {
    throw new PlanError(
      `unknown server "${name}" (servers in ${config.file}: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return server;
}

/** The servers a command is limited to (`flag` names the flag in the error), in config order; all by default. */
export function serversNamed(config: Config, names: readonly string[] | undefined, flag: string): string[] {
  if (!names || names.length === 0) return config.servers.map((s) => s.name);
  const unknown = names.filter((n) => !config.servers.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new PlanError(
      `${flag}: unknown server ${unknown.map((n) => `"${n}"`).join(", ")} (servers: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return config.servers.filter((s) => names.includes(s.name)).map((s) => s.name);
}

/**
 * The named server under its deploy lock, the fleet (`fleetNames`) open: a manual change to one
 * server (drain, enable) never interleaves with a deploy's own changes to it.
 */
export function withServerLocked<T>(
  config: Config,
  name: string,
  fleetNames: readonly string[],
  options: FleetOptions & { command: string },
  body: (fleet: Fleet, server: ServerConfig) => Promise<T>,
): Promise<T> {
  const server = serverNamed(config, name);
  return withFleet(config, fleetNames, options, (fleet) =>
    withLocks(
      fleet,
      [fleet.host(name)],
      newHolder(options.command, undefined, config.destination),
      options.emit,
      0,
      () => body(fleet, server),
    ),
  );
}

/** What `nexus drain` and `nexus enable` take from the command line. */
export interface ManualOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  force?: boolean;
}

/** `nexus <verb> <server> [--force]`: a manual change to one server of the config. */
export function manualCommand(
  setExit: SetExit,
  spec: {
    name: string;
    description: string;
    force: string;
    run(config: Config, server: string, options: ManualOptions): Promise<number>;
  },
): Command {
  return new Command(spec.name)
    .argument("<server>")
    .description(spec.description)
    .option("--force", spec.force)
    .addHelpText("after", examples(`nexus ${spec.name} nexus-beta`))
    .action(
      action(setExit, ({ reporter, global }, name: string, flags: { force?: boolean }) =>
        spec.run(readConfig(global), name, { emit: (e) => reporter.emit(e), ...global, force: flags.force }),
      ),
    );
}
