import type { Balancer } from "../balancer/balancer.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { activate } from "./activate.js";
import type { Fleet } from "./fleet.js";
import { probeNow } from "./health-check.js";

/**
 * What the rolling engine does to servers, as an interface: the real one works through the
 * fleet's SSH sessions, balancer and process manager; unit tests drive the engine with fakes.
 */
export interface FleetOps {
  readonly balancer: Balancer;
  /** Switch, restart and gate one server onto a release; true when the gate passed. */
  activate(server: ServerConfig, release: string, signal?: AbortSignal): Promise<boolean>;
  /** One /health probe passes now (any release). */
  healthy(server: string): Promise<boolean>;
  /** Stops the app (a server with no release to go back to). */
  stop(server: ServerConfig): Promise<void>;
  /** Makes what each server runs now survive a reboot. */
  persist(servers: string[]): Promise<void>;
}

export function fleetOps(fleet: Fleet, config: Config, emit: Emit): FleetOps {
  // A connection lost in an earlier step is opened again before a server is acted on.
  const host = async (name: string) => {
    await fleet.revive([fleet.host(name)]);
    return fleet.host(name);
  };
  return {
    balancer: fleet.balancer,
    async activate(server, release, signal) {
      const result = await activate(await host(server.name), release, config, fleet.processes, emit, signal);
      return result.gate.ok;
    },
    async healthy(name) {
      if (!fleet.hosts.has(name)) return false; // unreachable (--skip-unreachable): no capacity
      return (await probeNow(await host(name), config).catch(() => undefined))?.ok ?? false;
    },
    async stop(server) {
      await fleet.processes.stop((await host(server.name)).session);
    },
    async persist(servers) {
      await Promise.allSettled(
        servers.map(async (name) => fleet.processes.persist((await host(name)).session)),
      );
    },
  };
}
