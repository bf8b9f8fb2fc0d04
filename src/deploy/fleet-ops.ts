import type { Balancer } from "../balancer/balancer.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit } from "../events/events.js";
import type { PreparedRestart } from "../process/process-manager.js";
import type { SshSession } from "../ssh/session.js";
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
  /**
   * Gets the server's restart onto `release` ready while it drains, for the next `activate` of
   * that release to use (it saves the process manager's start-up while out of rotation).
   */
  prepare?(server: ServerConfig, release: string): void;
  /** Ends every prepared restart that was not used (a failed drain, the end of a rollout). */
  discardPrepared?(): void;
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
  type Helper = { restart: PreparedRestart; session: SshSession };
  /** Restarts readied during a drain, not used yet. */
  const prepared = new Map<string, Helper>();
  /** The last one that started a release which passed its gate: its PM2 connection saves at the end. */
  const connected = new Map<string, Helper>();
  const replace = (map: Map<string, Helper>, name: string, helper?: Helper) => {
    map.get(name)?.restart.close();
    if (helper) map.set(name, helper);
    else map.delete(name);
  };
  /** The prepared restart of this server onto this release, on its current connection; others end. */
  const takePrepared = (name: string, release: string, session: SshSession) => {
    const entry = prepared.get(name);
    prepared.delete(name);
    if (entry?.restart.release === release && entry.session === session) return entry.restart;
    entry?.restart.close();
    return undefined;
  };
  return {
    balancer: fleet.balancer,
    async activate(server, release, signal) {
      const h = await host(server.name);
      const restart = takePrepared(server.name, release, h.session);
      let ok = false;
      try {
        ok = (await activate(h, release, config, fleet.processes, emit, signal, restart)).gate.ok;
        return ok;
      } finally {
        if (restart && ok) replace(connected, server.name, { restart, session: h.session });
        else restart?.close();
      }
    },
    prepare(server, release) {
      const h = fleet.hosts.get(server.name);
      const processes = fleet.processes;
      if (!h?.session.alive || !processes.prepareRestart) return replace(prepared, server.name);
      const restart = processes.prepareRestart(h.session, h.layout, release);
      replace(prepared, server.name, { restart, session: h.session });
    },
    discardPrepared() {
      for (const name of [...prepared.keys()]) replace(prepared, name);
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
        servers.map(async (name) => {
          const h = await host(name);
          const helper = connected.get(name);
          // Any open PM2 connection saves what runs now; a broken one leaves it to the CLI.
          if (
            helper?.session === h.session &&
            (await helper.restart.persist().then(
              () => true,
              () => false,
            ))
          )
            return;
          await fleet.processes.persist(h.session);
        }),
      );
      for (const name of [...connected.keys()]) replace(connected, name);
    },
  };
}
