import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import type { PreparedRestart } from "../process/process-manager.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
import type { SshSession } from "../ssh/session.js";
import { activate } from "./activate.js";
import type { Fleet } from "./fleet.js";
import { probeNow } from "./health-check.js";

/**
 * The rolling engine's `FleetOps` on the real fleet: its SSH sessions, balancer and process
 * manager. Restarts are readied before their server's drain, and saved through the same
 * connection once its gate passed.
 */
export function fleetOps(fleet: Fleet, config: Config, emit: Emit): FleetOps {
  // A connection lost in an earlier step is opened again before a server is acted on.
  const host = async (name: string) => {
    await fleet.revive([fleet.host(name)]);
    return fleet.host(name);
  };
  /** `answering`: whether it answered a "list" asked at the drain (it may have waited minutes). */
  type Helper = { restart: PreparedRestart; session: SshSession; answering?: Promise<boolean> };
  /** Restarts readied before their drain, not used yet. */
  const prepared = new Map<string, Helper>();
  /**
   * `pm2 save` through the restart program's connection, started as soon as a server's gate
   * passed (a CLI `pm2 save` per server at the end costs ~0.15 s, 0.3 s for three at once): true
   * once saved. Dropped when the server is activated again.
   */
  const saved = new Map<string, { done: Promise<boolean>; session: SshSession }>();
  const drop = (name: string) => {
    prepared.get(name)?.restart.close();
    prepared.delete(name);
  };
  /**
   * The prepared restart of this server onto this release, on its current connection, if it still
   * answers (a PM2 daemon that died or hangs since it connected would leave "go" unanswered:
   * the CLI restart is used then); others end.
   */
  const takePrepared = async (name: string, release: string, session: SshSession) => {
    const entry = prepared.get(name);
    prepared.delete(name);
    if (
      entry?.restart.release === release &&
      entry.session === session &&
      (await (entry.answering ?? true)) &&
      entry.restart.alive
    )
      return entry.restart;
    entry?.restart.close();
    return undefined;
  };
  return {
    balancer: fleet.balancer,
    async activate(server, release, signal) {
      const h = await host(server.name);
      const restart = await takePrepared(server.name, release, h.session);
      saved.delete(server.name);
      let ok = false;
      try {
        ok = (await activate(h, release, config, fleet.processes, emit, signal, restart)).gate.ok;
        return ok;
      } finally {
        if (restart && ok) {
          const done = restart.persist().then(
            () => true,
            () => false,
          );
          void done.finally(() => restart.close());
          saved.set(server.name, { done, session: h.session });
        } else restart?.close();
      }
    },
    prepare(server, release) {
      const h = fleet.hosts.get(server.name);
      const entry = prepared.get(server.name);
      if (entry?.restart.release === release && entry.session === h?.session && entry.restart.alive) {
        entry.answering = entry.restart.inspect().then(
          () => true,
          () => false,
        );
        return;
      }
      drop(server.name);
      const processes = fleet.processes;
      if (!h?.session.alive || !processes.prepareRestart) return;
      const restart = processes.prepareRestart(h.session, h.layout, release);
      prepared.set(server.name, { restart, session: h.session });
    },
    discardPrepared() {
      for (const name of [...prepared.keys()]) drop(name);
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
          const save = saved.get(name);
          if (save?.session === h.session && (await save.done)) return;
          await fleet.processes.persist(h.session);
        }),
      );
    },
  };
}
