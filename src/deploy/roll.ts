import { type BackendState, stillOpen } from "../balancer/balancer.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit, Outcome, SummaryRow } from "../events/events.js";
import { allDone } from "../util/all-done.js";
import { sleep } from "../util/sleep.js";
import { capacityProblem } from "./capacity.js";
import type { FleetOps } from "./fleet-ops.js";

export interface RollOptions {
  config: Config;
  /** The servers and the balancer, as the engine acts on them (`fleetOps(fleet, …)`). */
  ops: FleetOps;
  emit: Emit;
  signal: AbortSignal;
  batches: ServerConfig[][];
  /** The first batch is a canary: a failure there stops the rollout before any other server. */
  canary?: boolean;
  /** The release each server should end on. */
  target: (server: string) => string;
  /** What to go back to if that fails (the release it served before), if any. */
  fallback: (server: string) => string | undefined;
  minInRotation: number;
  onFailure: "rollback-all" | "halt";
  pauseMs?: number;
  /**
   * Servers drained before this command are normally deployed and left drained (an operator
   * took them out). `nexus recover` puts back in rotation those its killed command drained.
   */
  enableDrained?: boolean | ((server: string) => boolean);
  /** The balancer's state as the command began, when the caller has read it already. */
  initialStates?: BackendState[];
  /** Kept up to date with the servers out of rotation right now, for a second Ctrl-C. */
  inHand?: Set<string>;
  /**
   * Judges a batch once it is back in rotation, before the next one is drained (the watch
   * window): a reason to roll it back, undefined, or `{ blind }` when it could not be judged
   * (the balancer's traffic could not be read): the roll stops there, nothing rolled back, and a
   * human decides (exit 3).
   */
  watch?: (batch: ServerConfig[], signal: AbortSignal) => Promise<string | { blind: string } | undefined>;
}

export interface RollResult {
  outcome: Outcome;
  rows: SummaryRow[];
  /**
   * Servers whose process changed: the process manager should persist what they run now (so a
   * reboot brings it back), which the commands do after printing the result.
   */
  touched: string[];
}

/**
 * Moves the fleet batch by batch, as docs/how-it-works.md tells it: capacity guard, drain, switch,
 * restart, gate, enable. A batch that passed its gate goes back in rotation in the same balancer
 * change that drains the next batch (one Nginx reload instead of two). On a failed gate the batch
 * goes back to its previous release with the same discipline, and so does every server already
 * done under "rollback-all". An interruption lets the batch in hand finish or be restored, then stops.
 */
export function roll(options: RollOptions): Promise<RollResult> {
  return new Rollout(options).run();
}

class Rollout {
  private readonly rows = new Map<string, SummaryRow>();
  /** When each server left rotation, for the summary's "out of rotation" seconds. */
  private readonly outSince = new Map<string, number>();
  /** Servers on the target release, in the order they got there (what rollback-all undoes). */
  private readonly done: ServerConfig[] = [];
  /** Gated servers waiting to go back in rotation with the next batch's drain. */
  private pending: ServerConfig[] = [];
  private readonly inHand: Set<string>;
  private initiallyDown = new Set<string>();
  /** The balancer's state as the roll began, for the first batch's capacity guard; then undefined. */
  private initialStates: BackendState[] | undefined;
  private failure = false;
  private interrupted = false;
  /** The watch could not judge a batch: the roll stopped there, for a human to decide. */
  private blind = false;

  constructor(private readonly o: RollOptions) {
    this.inHand = o.inHand ?? new Set<string>();
    for (const batch of o.batches) for (const s of batch) this.row(s.name);
  }

  async run(): Promise<RollResult> {
    try {
      try {
        // Every server's restart gets ready now, each on its own server, long before its drain
        // ends (HAProxy's lasts only its in-flight requests): a deploy readied them as staging began.
        this.prepare(this.o.batches.flat(), this.o.target);
        await this.noteOperatorDrains();
        await this.rollForward();
        if (!(await this.enable(this.takePending()))) this.failure = true;
      } catch (error) {
        await this.stoppedBy(error);
      }
      if (this.failure && !this.interrupted && this.o.onFailure === "rollback-all" && this.done.length > 0) {
        await this.rollBackDone();
      }
      return this.result();
    } finally {
      this.o.ops.discardPrepared?.();
      // What the balancer still writes (HAProxy's state file) is done, and said, before the result.
      await this.o.ops.balancer.settle?.();
    }
  }

  /**
   * A step that has no failure path of its own threw (the balancer's state read for the capacity
   * guard or the watch lost its connection; a bug): the servers still out of rotation in nexus's
   * hands (a gated batch waiting for the next drain's change, say) are reconciled like after a
   * balancer error, so none is left drained without a word.
   */
  private async stoppedBy(error: unknown): Promise<void> {
    this.failure = true;
    // Interrupted meanwhile: no rollback-all after it, as after any interruption.
    this.interrupted ||= this.o.signal.aborted;
    this.pending = [];
    this.o.emit({ type: "error", message: `the roll stopped: ${(error as Error).message}` });
    const out = this.o.batches.flat().filter((s) => this.inHand.has(s.name));
    if (out.length > 0) await this.reconcile(out, "the roll", error, false);
  }

  private async rollForward(): Promise<void> {
    const { batches, signal, emit } = this.o;
    for (const [index, batch] of batches.entries()) {
      if (signal.aborted) {
        this.interrupted = true;
        return;
      }
      if (index > 0 && this.o.pauseMs) {
        if (!(await this.enable(this.takePending()))) {
          this.failure = true;
          return;
        }
        emit({ type: "info", message: `pausing ${this.o.pauseMs / 1000}s before the next batch` });
        await sleep(this.o.pauseMs, signal);
        if (signal.aborted) {
          this.interrupted = true;
          return;
        }
      }
      const names = batch.map((s) => s.name);
      const label = this.o.canary && index === 0 ? "canary" : `batch ${index + 1}/${batches.length}`;
      emit({ type: "phase", phase: "roll", message: `${label}: ${names.join(", ")}` });

      const joining = this.takePending();
      const capacity = await capacityProblem(
        this.o.config,
        this.o.ops,
        names,
        this.o.minInRotation,
        joining.map((s) => s.name),
        this.initialStates,
      );
      this.initialStates = undefined;
      if (capacity) {
        emit({ type: "error", message: `capacity guard: ${capacity}` });
        for (const s of batch) this.row(s.name).note = "not drained: capacity guard";
        this.pending = joining;
        this.failure = true;
        return;
      }
      if (!(await this.drain(batch, this.o.target, joining))) {
        this.failure = true;
        return;
      }
      if (signal.aborted) {
        // Interrupted while it drained: nothing on it has changed yet, so it goes back as it was.
        this.interrupted = true;
        for (const s of batch) this.row(s.name).note = "interrupted while it drained: left as it was";
        if (!(await this.enable(batch))) this.failure = true;
        return;
      }

      const results = await Promise.all(batch.map((s) => this.activateTarget(s)));
      const passed = batch.filter((_, i) => results[i]);
      const failed = batch.filter((_, i) => !results[i]);
      if (failed.length === 0) {
        this.markDeployed(batch);
        if (!this.o.watch && this.o.ops.balancer.sharesChanges) {
          this.pending = batch;
          continue;
        }
        if (!(await this.enable(batch))) {
          this.failure = true;
          return;
        }
        const breach = await this.o.watch?.(batch, signal);
        if (!breach) continue;
        if (typeof breach === "object") {
          // Not judged is not bad: the batch stays on its new release, in rotation; the roll
          // stops before the next batch, and a human decides (deploy again, or roll back).
          this.blind = true;
          for (const s of batch) this.row(s.name).note = `${breach.blind}: not judged, deploy stopped here`;
          emit({
            type: "error",
            message: `NEEDS A HUMAN: ${breach.blind}; ${batch.map((s) => s.name).join(", ")} stay on the new release, in rotation, unjudged, and the deploy stops here: check the balancer's traffic, then deploy again or roll back`,
          });
          return;
        }
        // Like a failed gate: the batch goes back; an interruption during the window stops there.
        this.failure = true;
        this.interrupted = signal.aborted;
        for (const s of batch) this.row(s.name).note = breach;
        this.done.splice(this.done.length - batch.length, batch.length);
        const back = this.interrupted || this.o.onFailure === "halt" ? "restored" : "rolled back";
        if (await this.drain(batch, this.o.fallback)) await this.restore(batch, back);
        else {
          for (const s of batch) {
            if (this.row(s.name).result === "needs human") continue;
            this.needsHuman(
              s.name,
              `still on ${this.o.target(s.name)}, in rotation: ${breach}, and draining it to go back failed`,
            );
          }
        }
        return;
      }

      this.failure = true;
      this.interrupted = signal.aborted;
      for (const s of failed) {
        this.row(s.name).note = signal.aborted
          ? "interrupted before its gate passed"
          : this.o.canary && index === 0
            ? "canary failed its health gate"
            : "failed its health gate";
      }
      if (this.o.onFailure === "halt" || this.interrupted) {
        // Verified servers keep the new release; only the failed ones go back.
        this.markDeployed(passed);
        this.pending = passed;
        await this.restore(failed, "restored");
      } else {
        await this.restore([...failed, ...passed], "rolled back");
      }
      return;
    }
  }

  /** Every server already done goes back to its previous release, batch by batch. */
  private async rollBackDone(): Promise<void> {
    const { emit, signal } = this.o;
    // A snapshot: a server that ends needing a human leaves `done` meanwhile.
    const toUndo = [...this.done];
    emit({
      type: "phase",
      phase: "rollback",
      message: `rolling back ${toUndo.map((s) => s.name).join(", ")}`,
    });
    const size = Math.max(1, ...this.o.batches.map((b) => b.length));
    for (let i = 0; i < toUndo.length; i += size) {
      if (signal.aborted) {
        // The batch in hand was restored; the rest stays on the new release, which passed its gate.
        this.interrupted = true;
        for (const s of toUndo.slice(i)) this.row(s.name).note = "interrupted: still on the new release";
        return;
      }
      const batch = toUndo.slice(i, i + size);
      if (await this.drain(batch, this.o.fallback)) {
        await this.restore(batch, "rolled back");
        continue;
      }
      for (const s of batch) {
        this.needsHuman(s.name, `still on ${this.o.target(s.name)}: draining it for the rollback failed`);
      }
    }
  }

  private async activateTarget(server: ServerConfig): Promise<boolean> {
    const { ops, emit, signal } = this.o;
    try {
      return await ops.activate(server, this.o.target(server.name), signal);
    } catch (error) {
      emit({ type: "error", server: server.name, message: (error as Error).message });
      return false;
    }
  }

  /**
   * Drains `batch` (and puts `joining` back in rotation) in one balancer change, then waits for
   * the batch's in-flight requests; meanwhile each server's restart onto `next` gets ready.
   * False when the balancer failed; what it left is reconciled.
   */
  private async drain(
    batch: ServerConfig[],
    next: (server: string) => string | undefined,
    joining: ServerConfig[] = [],
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
        keepInRotation: { servers: this.o.config.servers, min: this.o.minInRotation },
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
      await allDone(
        batch.map(async (s) => {
          const wait = await ops.balancer.waitDrained(s, config.balancer.drainTimeout);
          const { drained, detail } = wait;
          if (!drained) {
            emit({
              type: "warn",
              server: s.name,
              message: `${stillOpen(wait)} after the drain timeout; going on`,
            });
          }
          emit({
            type: "step",
            server: s.name,
            step: "drain",
            status: "done",
            ms: Date.now() - started,
            ...(drained && detail ? { message: detail } : {}),
          });
        }),
      );
    } catch (error) {
      await this.reconcile(batch, "waiting for the drain", error);
      return false;
    }
    return true;
  }

  private prepare(batch: readonly ServerConfig[], next: (server: string) => string | undefined): void {
    for (const s of batch) {
      const release = next(s.name);
      if (release) this.o.ops.prepare?.(s, release);
    }
  }

  /** Back in rotation. False when the balancer failed and a server could not be put back. */
  private async enable(batch: ServerConfig[]): Promise<boolean> {
    if (batch.length === 0) return true;
    for (const s of batch) this.o.emit({ type: "step", server: s.name, step: "enable", status: "start" });
    const started = Date.now();
    try {
      await this.o.ops.balancer.apply({ enable: this.enableable(batch) });
    } catch (error) {
      return this.reconcile(batch, "enabling", error);
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
    let states: BackendState[] | undefined;
    try {
      states = await ops.balancer.state(config.servers);
    } catch (readError) {
      for (const s of servers) {
        this.needsHuman(
          s.name,
          `the balancer's state could not be read after ${doing} failed (${cause}; ${(readError as Error).message})`,
        );
      }
      return false;
    }
    const out = servers.filter((s) => {
      const state = states?.find((b) => b.server === s.name);
      return state?.present && !state.inRotation && !this.leaveDrained(s.name);
    });
    for (const s of servers.filter((s) => !out.includes(s))) {
      if (this.outSince.has(s.name)) this.enabled([s], Date.now());
      else this.notDrained(s, cause);
    }
    if (out.length === 0) return true;
    const healthy: ServerConfig[] = [];
    for (const s of out) {
      if (await ops.healthy(s.name).catch(() => false)) healthy.push(s);
      else
        this.needsHuman(s.name, `left out of rotation after ${doing} failed (${cause}), and /health fails`);
    }
    if (healthy.length === 0) return false;
    try {
      await ops.balancer.apply({ enable: healthy });
      for (const s of healthy) {
        if (this.outSince.has(s.name)) this.enabled([s], Date.now());
        else this.notDrained(s, cause);
      }
      return healthy.length === out.length;
    } catch (enableError) {
      for (const s of healthy) {
        this.needsHuman(
          s.name,
          `left out of rotation: putting it back failed: ${(enableError as Error).message.split("\n")[0]}`,
        );
      }
      return false;
    }
  }

  /** Puts drained servers back on their fallback release and in rotation. */
  private async restore(batch: ServerConfig[], result: "rolled back" | "restored"): Promise<void> {
    const { ops, emit } = this.o;
    const back: ServerConfig[] = [];
    await Promise.all(
      batch.map(async (s) => {
        const r = this.row(s.name);
        const previous = this.o.fallback(s.name);
        try {
          if (!previous) {
            await ops.stop(s);
            r.result = "failed";
            r.release = undefined;
            r.note = "no previous release to go back to: the app was stopped";
            back.push(s);
            return;
          }
          emit({
            type: "step",
            server: s.name,
            step: "restore",
            status: "start",
            message: `back to ${previous}`,
          });
          if (await ops.activate(s, previous)) {
            r.result = result;
            r.release = previous;
            back.push(s);
            emit({ type: "step", server: s.name, step: "restore", status: "done", message: previous });
            return;
          }
          r.note = `previous release ${previous} failed its gate too`;
        } catch (error) {
          r.note = `${previous ? `restoring ${previous}` : "stopping the app"} failed: ${(error as Error).message}`;
        }
        emit({ type: "step", server: s.name, step: "restore", status: "fail", message: r.note });
        this.needsHuman(s.name, `left drained. ${r.note}`);
      }),
    );
    await this.enable(back);
  }

  private async noteOperatorDrains(): Promise<void> {
    const { ops, config, emit } = this.o;
    this.initialStates = this.o.initialStates ?? (await ops.balancer.state(config.servers));
    this.initiallyDown = new Set(
      this.initialStates.filter((b) => b.present && !b.inRotation).map((b) => b.server),
    );
    for (const name of this.initiallyDown) {
      if (this.rows.has(name) && this.leaveDrained(name)) {
        emit({
          type: "warn",
          server: name,
          message: "was drained before this command: it is updated and left drained",
        });
      }
    }
  }

  private result(): RollResult {
    const list = [...this.rows.values()];
    let outcome: Outcome = "success";
    if (list.some((r) => r.result === "needs human") || this.blind) outcome = "needs-human";
    else if (this.interrupted) outcome = "interrupted";
    else if (this.failure) outcome = "failed";
    return {
      outcome,
      rows: list,
      touched: list.filter((r) => r.result !== "not reached").map((r) => r.server),
    };
  }

  private row(name: string): SummaryRow {
    let r = this.rows.get(name);
    if (!r) {
      r = { server: name, result: "not reached" };
      this.rows.set(name, r);
    }
    return r;
  }

  private leaveDrained(name: string): boolean {
    const enable = this.o.enableDrained;
    return this.initiallyDown.has(name) && !(typeof enable === "function" ? enable(name) : enable);
  }

  private enableable(servers: ServerConfig[]): ServerConfig[] {
    return servers.filter((s) => !this.leaveDrained(s.name));
  }

  private takePending(): ServerConfig[] {
    const pending = this.pending;
    this.pending = [];
    return pending;
  }

  private markDeployed(servers: ServerConfig[]): void {
    for (const s of servers) {
      const r = this.row(s.name);
      if (r.result === "needs human") continue;
      r.result = "deployed";
      r.release = this.o.target(s.name);
      this.done.push(s);
    }
  }

  /** Servers back in rotation (or left drained on purpose): the time they were out, the step done. */
  private enabled(servers: ServerConfig[], started: number): void {
    for (const s of servers) {
      const since = this.outSince.get(s.name);
      if (since !== undefined && !this.leaveDrained(s.name)) {
        const r = this.row(s.name);
        r.outOfRotation = (r.outOfRotation ?? 0) + (Date.now() - since) / 1000;
        this.outSince.delete(s.name);
      }
      this.inHand.delete(s.name);
      this.o.emit({ type: "step", server: s.name, step: "enable", status: "done", ms: Date.now() - started });
    }
  }

  /** A server whose drain did not happen (or was undone): still in rotation on its release. */
  private notDrained(server: ServerConfig, cause: string): void {
    this.inHand.delete(server.name);
    const r = this.row(server.name);
    if (r.result === "not reached") r.note = `not drained: ${cause}`;
    this.o.emit({ type: "step", server: server.name, step: "drain", status: "fail", message: cause });
  }

  private needsHuman(name: string, note: string): void {
    // Left for a human as it is: no later step (rollback-all included) touches it again.
    const index = this.done.findIndex((s) => s.name === name);
    if (index >= 0) this.done.splice(index, 1);
    const r = this.row(name);
    r.result = "needs human";
    r.note = note;
    this.o.emit({ type: "error", server: name, message: `NEEDS A HUMAN: ${note}` });
  }
}
