import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import type { PreparedRestart } from "../process/process-manager.js";
import type { ServerState } from "../remote/server-state.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
import type { SshSession } from "../ssh/session.js";
import { activate } from "./activate.js";
import type { Fleet } from "./fleet.js";
import { probeNow } from "./health-check.js";
import { surgeOps } from "./surge-ops.js";

/**
 * The rolling engine's `FleetOps` on the real fleet: its SSH sessions, balancer and process
 * manager. Restarts are readied before their server's drain, and saved through the same
 * connection once its gate passed.
 */
export function fleetOps(
  fleet: Fleet,
  config: Config,
  emit: Emit,
  /** Each server's state as read under the deploy lock (its live-port record: no read again). */
  states?: ReadonlyMap<string, ServerState>,
): FleetOps {
  // A connection lost in an earlier step is opened again before a server is acted on.
  const host = async (name: string) => {
    await fleet.revive([fleet.host(name)]);
    return fleet.host(name);
  };
  const restarts = new PreparedRestarts(fleet);
  return {
    balancer: fleet.balancer,
    surge: surgeOps(fleet, config, emit, host, restarts, states),
    async activate(server, release, signal) {
      const h = await host(server.name);
      const restart = await restarts.take(server.name, release, h.session);
      let ok = false;
      try {
        ok = (await activate(h, release, config, fleet.processes, emit, signal, restart)).gate.ok;
        return ok;
      } finally {
        restarts.done(server.name, h.session, restart, ok);
      }
    },
    prepare: (server, release) => restarts.prepare(server.name, release),
    discardPrepared: () => restarts.discard(),
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
          if (await restarts.saved(name, h.session)) return;
          await fleet.processes.persist(h.session);
        }),
      );
    },
  };
}

/** `answering`: whether it answered a "list" asked at the drain (it may have waited minutes). */
/** `slot`: the surge process's port it starts (undefined: the app's one process). */
type Helper = {
  restart: PreparedRestart;
  session: SshSession;
  slot: number | undefined;
  answering?: Promise<boolean>;
};

/** The restarts readied before their server's drain (`ProcessManager.prepareRestart`), per server. */
export class PreparedRestarts {
  /** Restarts readied before their drain, not used yet. */
  private readonly prepared = new Map<string, Helper>();
  /**
   * `pm2 save` through the restart program's connection, started as soon as a server's gate
   * passed (a CLI `pm2 save` per server at the end costs ~0.15 s, 0.3 s for three at once): true
   * once saved. Dropped when the server is activated again.
   */
  private readonly saves = new Map<string, { done: Promise<boolean>; session: SshSession }>();
  /**
   * The surge strategy's programs whose process passed its gate, kept to retire the process it
   * replaces (`retire`): the old process stopped and the list saved without another Node and PM2
   * start on the server (~0.3 s of CPU each, and a CLI `pm2 save` per server after the result).
   */
  private readonly kept = new Map<string, { restart: PreparedRestart; session: SshSession }>();

  constructor(private readonly fleet: Fleet) {}

  /** Gets the server's restart onto `release` ready; one ready for it already is kept (and asked whether it still answers). */
  prepare(name: string, release: string, slot?: number): void {
    const h = this.fleet.hosts.get(name);
    const entry = this.prepared.get(name);
    if (
      entry?.restart.release === release &&
      entry.slot === slot &&
      entry.session === h?.session &&
      entry.restart.alive
    ) {
      entry.answering = entry.restart.inspect().then(
        () => true,
        () => false,
      );
      return;
    }
    this.drop(name);
    const processes = this.fleet.processes;
    if (!h?.session.alive || !processes.prepareRestart) return;
    const restart = processes.prepareRestart(h.session, h.layout, release, slot);
    this.prepared.set(name, { restart, session: h.session, slot });
  }

  /**
   * The prepared restart of this server onto this release, on its current connection, if it still
   * answers (a PM2 daemon that died or hangs since it connected would leave "go" unanswered:
   * the CLI restart is used then); others end.
   */
  async take(
    name: string,
    release: string,
    session: SshSession,
    slot?: number,
  ): Promise<PreparedRestart | undefined> {
    const entry = this.prepared.get(name);
    this.prepared.delete(name);
    this.saves.delete(name);
    this.dropKept(name);
    if (
      entry?.restart.release === release &&
      entry.slot === slot &&
      entry.session === session &&
      (await (entry.answering ?? true)) &&
      entry.restart.alive
    )
      return entry.restart;
    entry?.restart.close();
    return undefined;
  }

  /** After the activation: a gate that passed saves the process list through it, then it ends. */
  done(name: string, session: SshSession, restart: PreparedRestart | undefined, passed: boolean): void {
    if (!restart) return;
    if (!passed) {
      restart.close();
      return;
    }
    const done = restart.persist().then(
      () => true,
      () => false,
    );
    void done.finally(() => restart.close());
    this.saves.set(name, { done, session });
  }

  /** A surge process's program, after its gate passed: kept for `retire`. */
  keep(name: string, session: SshSession, restart: PreparedRestart): void {
    this.dropKept(name);
    this.kept.set(name, { restart, session });
  }

  /**
   * Stops the server's process on `slot` through its kept program and saves the process list
   * there: true when it did (the after-result save is then skipped). False when none is kept on
   * this connection or PM2 did not stop it: the caller stops it another way.
   */
  async retire(name: string, session: SshSession, slot: number | undefined): Promise<boolean> {
    const kept = this.kept.get(name);
    this.kept.delete(name);
    if (!kept) return false;
    if (kept.session !== session || !kept.restart.alive) {
      kept.restart.close();
      return false;
    }
    try {
      await kept.restart.stop(slot);
    } catch {
      kept.restart.close();
      return false;
    }
    const done = kept.restart.persist().then(
      () => true,
      () => false,
    );
    void done.finally(() => kept.restart.close());
    this.saves.set(name, { done, session });
    return true;
  }

  /** Whether the server's process list was saved on this connection since its last activation. */
  async saved(name: string, session: SshSession): Promise<boolean> {
    const save = this.saves.get(name);
    return save?.session === session && (await save.done);
  }

  discard(): void {
    for (const name of [...this.prepared.keys()]) this.drop(name);
    for (const name of [...this.kept.keys()]) this.dropKept(name);
  }

  private dropKept(name: string): void {
    this.kept.get(name)?.restart.close();
    this.kept.delete(name);
  }

  private drop(name: string): void {
    this.prepared.get(name)?.restart.close();
    this.prepared.delete(name);
  }
}
