import { stillOpen } from "../../balancer/balancer.js";
import type { ServerConfig } from "../../config/load.js";
import { withPort } from "../../config/load.js";
import { appPortOf, nextPort } from "../../remote/live-port.js";
import { addConnectionsCut, connectionsCut, describeConnectionsCut } from "../drain/connections-cut.js";
import type { SurgeOps } from "../fleet-ops.js";
import type { RollLedger } from "../ledger.js";
import type { RollOptions } from "../roll.js";
import type { BatchMove, RolloutStrategy } from "../strategy.js";

/** A server whose new process runs beside the one serving, not switched to yet. */
interface Surging {
  release: string;
  /** The new process's port. */
  port: number;
  /** The port serving (undefined: the app's one process of a server never surged, on app.port). */
  from: number | undefined;
  /** The release the serving process runs, if any. */
  serving: string | undefined;
}

/**
 * The surge strategy (docs/how-it-works.md, "Surge"): no server ever leaves rotation. On each
 * server of a batch the release starts as a second process on the other port (app.port /
 * app.surgePort) and is gated there while the old one serves; the balancer then moves the
 * server's entry to the new port (one change for the batch: one Nginx reload; HAProxy's runtime
 * API, no reload), the old process drains (its connections from the balancer reach 0, or
 * balancer.drainTimeout) and is stopped. A gate that fails leaves the balancer untouched: the new
 * process is stopped and `current` points back at the release that serves.
 */
export class SurgeStrategy implements RolloutStrategy {
  /** Servers whose new process was started and not switched to (nor stopped) yet. */
  private readonly surging = new Map<string, Surging>();
  /** Servers out of rotation before the roll began (an operator's drain): they stay so. */
  private initiallyDown = new Set<string>();
  /**
   * The port each server's balancer entry points at, as the balancer says (kept up to date after
   * each switch): the truth the live-port record is checked against. A command killed between
   * the switch and the record leaves them apart; the balancer decides which process serves.
   */
  private readonly balancerPort = new Map<string, number>();
  /**
   * Old processes being retired (their connections waited for, then stopped) while the roll goes
   * on: the next batch does not wait for them. Whatever comes next on a server that needs its old
   * port free (a move back), and the end of the roll, waits for them (`retired`).
   */
  private readonly retiring = new Map<string, Promise<void>>();
  private readonly surge: SurgeOps;

  constructor(
    private readonly o: RollOptions,
    private readonly ledger: RollLedger,
  ) {
    if (!o.ops.surge) throw new Error("the surge strategy needs FleetOps.surge");
    this.surge = o.ops.surge;
  }

  async begin(): Promise<void> {
    const { ops, config, emit } = this.o;
    const states = this.o.initialStates ?? (await ops.balancer.state(config.servers));
    this.initiallyDown = new Set(states.filter((b) => b.present && !b.inRotation).map((b) => b.server));
    for (const b of states) {
      const port = appPortOf(b.address, config.app);
      if (port !== undefined) this.balancerPort.set(b.server, port);
    }
    // Each server's start readied ahead of its turn (its PM2 connection, its process file), on the
    // port the balancer says is free (a record that says otherwise makes `start` ready it again there).
    for (const s of this.o.batches.flat()) {
      const release = this.o.target(s.name);
      if (!release) continue;
      const port = nextPort(this.balancerPort.get(s.name), config.app);
      this.surge.prepare?.(s, release, port);
      this.surge.writeProcessFile?.(s, release, port);
    }
    for (const name of this.initiallyDown) {
      if (this.ledger.has(name))
        emit({
          type: "warn",
          server: name,
          message: "was drained before this command: it is updated and left drained",
        });
    }
  }

  async forward(batch: readonly ServerConfig[]): Promise<BatchMove> {
    const results = await Promise.all(
      batch.map((s) => this.startBeside(s, this.o.target(s.name), this.o.fallback(s.name))),
    );
    return {
      moved: true,
      passed: batch.filter((_, i) => results[i]),
      failed: batch.filter((_, i) => !results[i]),
    };
  }

  async serve(servers: readonly ServerConfig[], now: boolean): Promise<boolean> {
    // `now`: the watch probes them next, on the port the server's record names: recorded first.
    const { switched, failed } = await this.switchOver(servers, now);
    for (const s of failed) {
      const surging = this.surging.get(s.name);
      await this.abandonNew(s);
      const row = this.ledger.row(s.name);
      this.ledger.notDeployed(s.name);
      row.result = surging?.serving ? "restored" : "failed";
      row.release = surging?.serving;
      row.note = "the balancer could not be switched to the new process: the old one still serves";
    }
    return switched.length === servers.length;
  }

  /** Nothing waits to take traffic (a batch switches in `serve`); the old processes are stopped. */
  async rejoin(): Promise<boolean> {
    await this.retired();
    return true;
  }

  /** Servers whose gate failed (or that passed, under rollback-all) and were never switched to. */
  async restore(servers: readonly ServerConfig[], result: "rolled back" | "restored"): Promise<void> {
    await this.retired();
    await Promise.all(
      servers.map(async (s) => {
        const surging = this.surging.get(s.name);
        const row = this.ledger.row(s.name);
        if (!surging) {
          // Nothing was started on it (its live port could not be read): it serves as it did.
          this.ledger.notDeployed(s.name);
          row.result = this.o.fallback(s.name) ? result : "failed";
          row.release = this.o.fallback(s.name);
          return;
        }
        this.o.emit({
          type: "step",
          server: s.name,
          step: "restore",
          status: "start",
          message: `stopping the new process on port ${surging.port}`,
        });
        if (!(await this.abandonNew(s))) return;
        this.ledger.notDeployed(s.name);
        if (surging.serving) {
          row.result = result;
          row.release = surging.serving;
        } else {
          row.result = "failed";
          row.release = undefined;
          row.note ??= "no previous release was running: the new process was stopped";
        }
        this.o.emit({
          type: "step",
          server: s.name,
          step: "restore",
          status: "done",
          message: surging.serving ?? "stopped",
        });
      }),
    );
  }

  /** Servers on the target and in traffic: their fallback release surges back in. */
  async back(
    servers: readonly ServerConfig[],
    result: "rolled back" | "restored",
    reason?: string,
  ): Promise<void> {
    const { emit } = this.o;
    // Moving back starts the fallback on the other port: the one the old process is leaving.
    await this.retired();
    const ready: ServerConfig[] = [];
    await Promise.all(
      servers.map(async (s) => {
        const target = this.o.target(s.name);
        const previous = this.o.fallback(s.name);
        if (!previous) {
          this.ledger.needsHuman(s.name, `still on ${target}: it has no previous release to go back to`);
          return;
        }
        emit({
          type: "step",
          server: s.name,
          step: "restore",
          status: "start",
          message: `back to ${previous}`,
        });
        if (await this.startBeside(s, previous, target)) {
          ready.push(s);
          return;
        }
        await this.abandonNew(s);
        this.ledger.needsHuman(
          s.name,
          `still on ${target}, in rotation${reason ? `: ${reason}` : ""}; its previous release ${previous} failed its gate`,
        );
      }),
    );
    const { switched, failed } = await this.switchOver(ready);
    for (const s of switched) {
      const row = this.ledger.row(s.name);
      row.result = result;
      row.release = this.o.fallback(s.name);
      emit({ type: "step", server: s.name, step: "restore", status: "done", message: row.release });
    }
    for (const s of failed) {
      await this.abandonNew(s);
      this.ledger.needsHuman(
        s.name,
        `still on ${this.o.target(s.name)}: the balancer could not be switched back`,
      );
    }
  }

  /** New processes not switched to are stopped, `current` back at what serves: as before the roll. */
  async abandon(): Promise<void> {
    await this.retired();
    await Promise.all(
      this.o.batches
        .flat()
        .filter((s) => this.surging.has(s.name))
        .map((s) => this.abandonNew(s)),
    );
  }

  /** The release started on the other port and gated there; true when its gate passed. */
  private async startBeside(s: ServerConfig, release: string, serving: string | undefined): Promise<boolean> {
    const { emit, signal, config } = this.o;
    try {
      const recorded = await this.surge.livePort(s);
      const from = this.balancerPort.get(s.name) ?? recorded;
      if (from !== (recorded ?? config.app.port))
        emit({
          type: "warn",
          server: s.name,
          message: `the balancer sends its traffic to port ${from}, the record says ${recorded ?? config.app.port} (a command stopped between the two): going by the balancer`,
        });
      const port = nextPort(from, config.app);
      this.surging.set(s.name, { release, port, from, serving });
      return await this.surge.start(s, release, port, signal);
    } catch (error) {
      emit({ type: "error", server: s.name, message: (error as Error).message });
      return false;
    }
  }

  /**
   * The new process of a server that will not be switched to is stopped and `current` points
   * back at the release serving. False (and the server left to a human) when that failed.
   */
  private async abandonNew(s: ServerConfig): Promise<boolean> {
    const surging = this.surging.get(s.name);
    if (!surging) return true;
    this.surging.delete(s.name);
    try {
      await this.surge.stop(s, surging.port);
      if (surging.serving) await this.surge.point(s, surging.serving);
      return true;
    } catch (error) {
      this.ledger.needsHuman(
        s.name,
        `its new process on port ${surging.port} (${surging.release}) could not be stopped: ${(error as Error).message.split("\n")[0]}; the balancer still sends its traffic to port ${surging.from ?? this.o.config.app.port}`,
      );
      return false;
    }
  }

  /**
   * One balancer change moves every server's entry to its new process's port; then the new port
   * is recorded and each old process drains and is stopped, while the roll goes on (awaited by
   * `retired`; the records too when `recorded`). After a balancer error its state says which
   * servers moved: those go on, the others are `failed` (their new process still runs).
   */
  private async switchOver(
    servers: readonly ServerConfig[],
    recorded = false,
  ): Promise<{ switched: ServerConfig[]; failed: ServerConfig[] }> {
    const { ops, emit, config } = this.o;
    const moving = servers.filter((s) => this.surging.has(s.name));
    if (moving.length === 0) return { switched: [], failed: [] };
    const to = (s: ServerConfig) => withPort(s.upstream, (this.surging.get(s.name) as Surging).port);
    for (const s of moving)
      emit({
        type: "step",
        server: s.name,
        step: "enable",
        status: "start",
        message: `to port ${this.surging.get(s.name)?.port}`,
      });
    const started = Date.now();
    let switched = moving;
    try {
      await ops.balancer.apply({
        move: moving.map((s) => ({ server: s, to: to(s) })),
        enable: moving.filter((s) => !this.initiallyDown.has(s.name)),
      });
    } catch (error) {
      emit({
        type: "error",
        message: `switching ${moving.map((s) => s.name).join(", ")} failed: ${(error as Error).message}`,
      });
      const states = await ops.balancer.state(moving).catch(() => []);
      switched = moving.filter((s) => states.find((b) => b.server === s.name)?.address === to(s));
    }
    for (const s of moving) {
      const ok = switched.includes(s);
      emit({
        type: "step",
        server: s.name,
        step: "enable",
        status: ok ? "done" : "fail",
        ms: Date.now() - started,
      });
    }
    // What reads the record in this command reads it through `retired` (a move back) or after
    // it (the watch, asked for with `recorded`); the old process's port is free only once stopped.
    const records = switched.map((s) => this.recordNew(s));
    switched.forEach((s, i) => {
      const retire = (records[i] as Promise<number | undefined>).then((oldPort) =>
        oldPort === undefined ? undefined : this.retireOld(s, oldPort, config.balancer.drainTimeout),
      );
      this.retiring.set(s.name, retire);
    });
    if (recorded) await Promise.all(records);
    return { switched, failed: moving.filter((s) => !switched.includes(s)) };
  }

  /** The old processes a move back left retiring, stopped before the roll ends. */
  settle(): Promise<void> {
    return this.retired();
  }

  /** Until every old process being retired is stopped (or failed to be, said as a warning). */
  private async retired(): Promise<void> {
    const pending = [...this.retiring.values()];
    this.retiring.clear();
    await Promise.all(pending);
  }

  /**
   * The new port recorded on the server, before anything reads it again (the watch, a move back);
   * the old process's port, or undefined when the record failed (the server then needs a human).
   */
  private async recordNew(s: ServerConfig): Promise<number | undefined> {
    const surging = this.surging.get(s.name) as Surging;
    this.surging.delete(s.name);
    this.balancerPort.set(s.name, surging.port);
    try {
      await this.surge.record(s, surging.port);
      return surging.from ?? this.o.config.app.port;
    } catch (error) {
      this.ledger.needsHuman(
        s.name,
        `serves on port ${surging.port}, but recording it failed: ${(error as Error).message}`,
      );
      return undefined;
    }
  }

  /** The old process's connections from the balancer end, then it stops. Never throws. */
  private async retireOld(s: ServerConfig, oldPort: number, timeoutMs: number): Promise<void> {
    const { ops, emit } = this.o;
    emit({
      type: "step",
      server: s.name,
      step: "drain",
      status: "start",
      message: `old process on port ${oldPort}`,
    });
    const started = Date.now();
    try {
      const wait = await ops.balancer.waitLeft(s, withPort(s.upstream, oldPort), timeoutMs);
      if (!wait.drained)
        emit({
          type: "warn",
          server: s.name,
          message: `old process on port ${oldPort}: ${stillOpen(wait)} after the drain timeout; stopping it`,
        });
      // Those still open (WebSockets, SSE) end with the old process, stopped next (its SIGINT contract).
      const cut = connectionsCut(wait);
      if (cut) {
        const row = this.ledger.row(s.name);
        row.connectionsCut = addConnectionsCut(row.connectionsCut, cut);
      }
      const message = cut ? describeConnectionsCut(cut) : wait.detail;
      emit({
        type: "step",
        server: s.name,
        step: "drain",
        status: "done",
        ms: Date.now() - started,
        ...(message ? { message } : {}),
        ...(cut ? { connectionsCut: cut } : {}),
      });
    } catch (error) {
      emit({
        type: "warn",
        server: s.name,
        message: `waiting for the old process's connections failed (${(error as Error).message}); stopping it`,
      });
    }
    try {
      await this.surge.stop(s, oldPort);
    } catch (error) {
      emit({
        type: "warn",
        server: s.name,
        message: `the old process on port ${oldPort} could not be stopped: ${(error as Error).message.split("\n")[0]}`,
      });
    }
  }
}
