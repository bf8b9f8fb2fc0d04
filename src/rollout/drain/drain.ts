import { type BackendState, stillOpen } from "../../balancer/balancer.js";
import type { ServerConfig } from "../../config/load.js";
import type { ConnectionsCut } from "../../events/events.js";
import { allDone } from "../../util/all-done.js";
import { capacityProblem, noCapacity } from "../capacity.js";
import type { RollLedger } from "../ledger.js";
import type { RollOptions } from "../roll.js";
import type { BatchMove, RolloutStrategy } from "../strategy.js";
import { addConnectionsCut, connectionsCut, describeConnectionsCut } from "./connections-cut.js";

/**
 * The drain strategy, as docs/how-it-works.md tells it: capacity guard, drain, switch, restart,
 * gate, enable. A batch that passed its gate goes back in rotation in the same balancer change
 * that drains the next batch (one Nginx reload instead of two; with HAProxy, whose runtime API
 * changes cost nothing, `Balancer.sharesChanges` is false and it goes back at once). Every
 * balancer error is reconciled with the balancer's real state: a server is put back when it is
 * healthy, or left to a human.
 */
export class DrainStrategy implements RolloutStrategy {
  /** When each server left rotation, for the summary's "out of rotation" seconds. */
  private readonly outSince = new Map<string, number>();
  /** Servers drained in a batch that left no server in rotation, and since when (the summary's "no capacity"). */
  private readonly emptySince = new Map<string, number>();
  /** Gated servers waiting to go back in rotation with the next batch's drain. */
  private pending: ServerConfig[] = [];
  /** The servers out of rotation in nexus's hands right now (the CLI's second Ctrl-C names them). */
  private readonly inHand: Set<string>;
  /** Servers out of rotation before the roll began (an operator's drain). */
  private initiallyDown = new Set<string>();
  /** Connections a drain's timeout left to the restart, per server: counted in its row when it restarts. */
  private readonly leftToRestart = new Map<string, number>();
  /** The balancer's state as the roll began, for the first batch's capacity guard; then undefined. */
  private initialStates: BackendState[] | undefined;

  constructor(
    private readonly o: RollOptions,
    private readonly ledger: RollLedger,
  ) {
    this.inHand = o.inHand ?? new Set<string>();
  }

  async begin(): Promise<void> {
    // Every server's restart gets ready now, each on its own server, long before its drain
    // ends (HAProxy's lasts only its in-flight requests): a deploy readied them as staging began.
    this.prepare(this.o.batches.flat(), this.o.target);
    await this.noteOperatorDrains();
  }

  async forward(batch: readonly ServerConfig[]): Promise<BatchMove> {
    const { emit, signal } = this.o;
    const joining = this.takePending();
    const capacity = await capacityProblem(
      this.o.config,
      this.o.ops,
      batch.map((s) => s.name),
      this.o.minInRotation,
      joining.map((s) => s.name),
      this.initialStates,
    );
    this.initialStates = undefined;
    if (capacity) {
      emit({ type: "error", message: `capacity guard: ${capacity}` });
      for (const s of batch) this.ledger.row(s.name).note = "not drained: capacity guard";
      this.pending = joining;
      return { moved: false, interrupted: false, failure: true };
    }
    const empty = noCapacity(this.o.config, batch);
    if (empty) emit({ type: "warn", message: empty });
    if (!(await this.drain(batch, this.o.target, joining)))
      return { moved: false, interrupted: false, failure: true };
    if (empty) for (const s of batch) this.emptySince.set(s.name, Date.now());
    if (signal.aborted) {
      // Interrupted while it drained: nothing on it has changed yet, so it goes back as it was.
      for (const s of batch) this.ledger.row(s.name).note = "interrupted while it drained: left as it was";
      return { moved: false, interrupted: true, failure: !(await this.enable(batch)) };
    }
    const results = await Promise.all(batch.map((s) => this.activateTarget(s)));
    return {
      moved: true,
      passed: batch.filter((_, i) => results[i]),
      failed: batch.filter((_, i) => !results[i]),
    };
  }

  async serve(servers: readonly ServerConfig[], now: boolean): Promise<boolean> {
    if (!now && this.o.ops.balancer.sharesChanges) {
      this.pending.push(...servers);
      return true;
    }
    return this.enable(servers);
  }

  rejoin(): Promise<boolean> {
    return this.enable(this.takePending());
  }

  /** Puts drained servers back on their fallback release and in rotation. */
  async restore(servers: readonly ServerConfig[], result: "rolled back" | "restored"): Promise<void> {
    const back: ServerConfig[] = [];
    await Promise.all(
      servers.map(async (s) => {
        if (await this.restoreOne(s, result)) back.push(s);
      }),
    );
    await this.enable(back);
  }

  async back(servers: readonly ServerConfig[], result: "rolled back" | "restored", reason?: string) {
    if (await this.drain(servers, this.o.fallback)) {
      await this.restore(servers, result);
      return;
    }
    for (const s of servers) {
      const target = this.o.target(s.name);
      if (reason === undefined)
        this.ledger.needsHuman(s.name, `still on ${target}: draining it for the rollback failed`);
      else if (this.ledger.row(s.name).result !== "needs human")
        this.ledger.needsHuman(
          s.name,
          `still on ${target}, in rotation: ${reason}, and draining it to go back failed`,
        );
    }
  }

  /**
   * The servers still out of rotation in nexus's hands (a gated batch waiting for the next
   * drain's change, say) are reconciled like after a balancer error, so none is left drained
   * without a word.
   */
  async abandon(error: unknown): Promise<void> {
    this.pending = [];
    const out = this.o.batches.flat().filter((s) => this.inHand.has(s.name));
    if (out.length > 0) await this.reconcile(out, "the roll", error, false);
  }

  private async activateTarget(server: ServerConfig): Promise<boolean> {
    const { ops, emit, signal } = this.o;
    this.restarting(server.name);
    try {
      return await ops.activate(server, this.o.target(server.name), signal);
    } catch (error) {
      emit({ type: "error", server: server.name, message: (error as Error).message });
      return false;
    }
  }

  /** A drained server onto its fallback release (stopped when it has none): true when it can go back in rotation. */
  private async restoreOne(s: ServerConfig, result: "rolled back" | "restored"): Promise<boolean> {
    const { ops, emit } = this.o;
    const row = this.ledger.row(s.name);
    const previous = this.o.fallback(s.name);
    this.restarting(s.name);
    try {
      if (!previous) {
        await ops.stop(s);
        row.result = "failed";
        row.release = undefined;
        row.note = "no previous release to go back to: the app was stopped";
        return true;
      }
      emit({
        type: "step",
        server: s.name,
        step: "restore",
        status: "start",
        message: `back to ${previous}`,
      });
      if (await ops.activate(s, previous)) {
        row.result = result;
        row.release = previous;
        emit({ type: "step", server: s.name, step: "restore", status: "done", message: previous });
        return true;
      }
      row.note = `previous release ${previous} failed its gate too`;
    } catch (error) {
      row.note = `${previous ? `restoring ${previous}` : "stopping the app"} failed: ${(error as Error).message}`;
    }
    emit({ type: "step", server: s.name, step: "restore", status: "fail", message: row.note });
    this.ledger.needsHuman(s.name, `left drained. ${row.note}`);
    return false;
  }

  /**
   * Drains `batch` (and puts `joining` back in rotation) in one balancer change, then waits for
   * the batch's in-flight requests; meanwhile each server's restart onto `next` gets ready.
   * False when the balancer failed; what it left is reconciled.
   */
  private async drain(
    batch: readonly ServerConfig[],
    next: (server: string) => string | undefined,
    joining: readonly ServerConfig[] = [],
  ): Promise<boolean> {
    const { emit, ops, config } = this.o;
    const live = batch.filter((s) => !this.initiallyDown.has(s.name));
    this.prepare(batch, next);
    for (const s of joining) emit({ type: "step", server: s.name, step: "enable", status: "start" });
    for (const s of batch) {
      emit({ type: "step", server: s.name, step: "drain", status: "start" });
      this.inHand.add(s.name);
    }
    const started = Date.now();
    try {
      await ops.balancer.apply({
        drain: live,
        enable: this.enableable(joining),
        keepInRotation: { servers: config.servers, min: this.o.minInRotation },
      });
    } catch (error) {
      await this.reconcile([...joining, ...batch], "draining", error);
      return false;
    }
    this.enabled(joining, started);
    for (const s of live) this.outSince.set(s.name, Date.now());
    try {
      // Every wait ends before a failure is reconciled: one still polling would act on a server
      // the reconciliation puts back.
      await allDone(batch.map((s) => this.waitDrained(s, started)));
    } catch (error) {
      await this.reconcile([...batch], "waiting for the drain", error);
      return false;
    }
    return true;
  }

  /** One server's in-flight requests, then its drain step done (with a warning when the timeout ended it). */
  private async waitDrained(s: ServerConfig, started: number): Promise<void> {
    const { emit, ops, config } = this.o;
    const wait = await ops.balancer.waitDrained(s, config.balancer.drainTimeout, { shutAtTimeout: true });
    const { drained, detail } = wait;
    const cut = connectionsCut(wait);
    this.leftToRestart.delete(s.name);
    if (cut) {
      if (cut.byBalancer > 0) this.countCut(s.name, { byBalancer: cut.byBalancer, byRestart: 0 });
      if (cut.byRestart > 0) this.leftToRestart.set(s.name, cut.byRestart);
    }
    if (!drained)
      emit({ type: "warn", server: s.name, message: `${stillOpen(wait)} after the drain timeout; going on` });
    const message = cut ? describeConnectionsCut(cut) : drained ? detail : undefined;
    emit({
      type: "step",
      server: s.name,
      step: "drain",
      status: "done",
      ms: Date.now() - started,
      ...(message ? { message } : {}),
      ...(cut ? { connectionsCut: cut } : {}),
    });
  }

  /** The server restarts now: the connections its drain left open are cut (the summary counts them). */
  private restarting(name: string): void {
    const left = this.leftToRestart.get(name);
    if (left === undefined) return;
    this.leftToRestart.delete(name);
    this.countCut(name, { byBalancer: 0, byRestart: left });
  }

  private countCut(name: string, cut: ConnectionsCut): void {
    const row = this.ledger.row(name);
    row.connectionsCut = addConnectionsCut(row.connectionsCut, cut);
  }

  private prepare(batch: readonly ServerConfig[], next: (server: string) => string | undefined): void {
    for (const s of batch) {
      const release = next(s.name);
      if (release) this.o.ops.prepare?.(s, release);
    }
  }

  /** Back in rotation. False when the balancer failed and a server could not be put back. */
  private async enable(batch: readonly ServerConfig[]): Promise<boolean> {
    if (batch.length === 0) return true;
    for (const s of batch) this.o.emit({ type: "step", server: s.name, step: "enable", status: "start" });
    const started = Date.now();
    try {
      await this.o.ops.balancer.apply({ enable: this.enableable(batch) });
    } catch (error) {
      return this.reconcile([...batch], "enabling", error);
    }
    this.enabled(batch, started);
    return true;
  }

  /**
   * After a balancer error the change may have been made, half made, or not made: the balancer's
   * real state decides. A server found out of rotation goes back if it answers /health; one that
   * cannot be put back, or whose state cannot be read, needs a human (its journal is kept).
   * True when every server ended where it should be.
   */
  private async reconcile(
    servers: ServerConfig[],
    doing: string,
    error: unknown,
    announce = true,
  ): Promise<boolean> {
    const { emit, ops, config } = this.o;
    const cause = (error as Error).message.split("\n")[0] ?? "";
    if (announce) {
      emit({
        type: "error",
        message: `${doing} ${servers.map((s) => s.name).join(", ")} failed: ${(error as Error).message}`,
      });
    }
    let states: BackendState[];
    try {
      states = await ops.balancer.state(config.servers);
    } catch (readError) {
      for (const s of servers) {
        this.ledger.needsHuman(
          s.name,
          `the balancer's state could not be read after ${doing} failed (${cause}; ${(readError as Error).message})`,
        );
      }
      return false;
    }
    const out = servers.filter((s) => {
      const state = states.find((b) => b.server === s.name);
      return state?.present && !state.inRotation && !this.leaveDrained(s.name);
    });
    for (const s of servers.filter((s) => !out.includes(s))) this.settled(s, cause);
    if (out.length === 0) return true;
    return this.putBack(out, doing, cause);
  }

  /** Reconciled servers found out of rotation: back in if /health passes, else left to a human. */
  private async putBack(out: ServerConfig[], doing: string, cause: string): Promise<boolean> {
    const healthy: ServerConfig[] = [];
    for (const s of out) {
      if (await this.o.ops.healthy(s.name).catch(() => false)) healthy.push(s);
      else
        this.ledger.needsHuman(
          s.name,
          `left out of rotation after ${doing} failed (${cause}), and /health fails`,
        );
    }
    if (healthy.length === 0) return false;
    try {
      await this.o.ops.balancer.apply({ enable: healthy });
      for (const s of healthy) this.settled(s, cause);
      return healthy.length === out.length;
    } catch (enableError) {
      for (const s of healthy) {
        this.ledger.needsHuman(
          s.name,
          `left out of rotation: putting it back failed: ${(enableError as Error).message.split("\n")[0]}`,
        );
      }
      return false;
    }
  }

  /** A reconciled server in rotation: back from its drain, or never drained at all. */
  private settled(s: ServerConfig, cause: string): void {
    if (this.outSince.has(s.name)) this.enabled([s], Date.now());
    else this.notDrained(s, cause);
  }

  private async noteOperatorDrains(): Promise<void> {
    const { ops, config, emit } = this.o;
    this.initialStates = this.o.initialStates ?? (await ops.balancer.state(config.servers));
    this.initiallyDown = new Set(
      this.initialStates.filter((b) => b.present && !b.inRotation).map((b) => b.server),
    );
    for (const name of this.initiallyDown) {
      if (this.ledger.has(name) && this.leaveDrained(name)) {
        emit({
          type: "warn",
          server: name,
          message: "was drained before this command: it is updated and left drained",
        });
      }
    }
  }

  private leaveDrained(name: string): boolean {
    const enable = this.o.enableDrained;
    return this.initiallyDown.has(name) && !(typeof enable === "function" ? enable(name) : enable);
  }

  private enableable(servers: readonly ServerConfig[]): ServerConfig[] {
    return servers.filter((s) => !this.leaveDrained(s.name));
  }

  private takePending(): ServerConfig[] {
    const pending = this.pending;
    this.pending = [];
    return pending;
  }

  /** Servers back in rotation (or left drained on purpose): the time they were out, the step done. */
  private enabled(servers: readonly ServerConfig[], started: number): void {
    for (const s of servers) {
      const since = this.outSince.get(s.name);
      if (since !== undefined && !this.leaveDrained(s.name)) {
        const row = this.ledger.row(s.name);
        row.outOfRotation = (row.outOfRotation ?? 0) + (Date.now() - since) / 1000;
        this.outSince.delete(s.name);
      }
      const empty = this.emptySince.get(s.name);
      if (empty !== undefined) {
        this.emptySince.delete(s.name);
        const row = this.ledger.row(s.name);
        const gap = `no capacity for ${((Date.now() - empty) / 1000).toFixed(2)}s (no other server was in rotation)`;
        row.note = row.note ? `${row.note}; ${gap}` : gap;
      }
      this.inHand.delete(s.name);
      this.o.emit({ type: "step", server: s.name, step: "enable", status: "done", ms: Date.now() - started });
    }
  }

  /** A server whose drain did not happen (or was undone): still in rotation on its release. */
  private notDrained(server: ServerConfig, cause: string): void {
    this.inHand.delete(server.name);
    const row = this.ledger.row(server.name);
    if (row.result === "not reached") row.note = `not drained: ${cause}`;
    this.o.emit({ type: "step", server: server.name, step: "drain", status: "fail", message: cause });
  }
}
