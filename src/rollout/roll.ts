import type { BackendState } from "../balancer/balancer.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { sleep } from "../util/sleep.js";
import { describeBudget, failureBudget, unreachableOverBudget, withinBudget } from "./budget.js";
import type { FleetOps } from "./fleet-ops.js";
import { RollLedger, type RollResult } from "./ledger.js";
import { strategyNamed } from "./strategies.js";
import type { RolloutStrategy, RolloutStrategyDriver } from "./strategy.js";

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
   * window): undefined to go on, or why the batch goes back ("rollback"), or why the rollout
   * stops with the batch left as it is ("halt": nothing proved it bad, nothing proved it good;
   * "needs-human": the balancer's traffic could not be read, so the batch was not judged, exit 3).
   */
  watch?: (batch: ServerConfig[], signal: AbortSignal) => Promise<WatchStop | undefined>;
  /** How each batch moves (default: `rolling.strategy`). */
  strategy?: RolloutStrategyDriver;
  /** Servers of this command left out as unreachable (--skip-unreachable): they count against `rolling.maxFailed`. */
  unreachable?: readonly string[];
}

export type { RollResult } from "./ledger.js";

/** What the engine does after a batch's watch (`RollOptions.watch`). */
export interface WatchStop {
  reason: string;
  action: "rollback" | "halt" | "needs-human";
}

/**
 * Moves the fleet batch by batch, each batch as the rollout strategy moves it (`rolling.strategy`;
 * "drain" as docs/how-it-works.md tells it). A failed gate sends the batch back to its previous
 * release, and every server already done under "rollback-all"; a watch window that finds a rise
 * does the same; an interruption lets the batch in hand finish or be restored, then stops.
 */
export function roll(options: RollOptions): Promise<RollResult> {
  return new Rollout(options).run();
}

class Rollout {
  private readonly ledger: RollLedger;
  private readonly strategy: RolloutStrategy;
  private failure = false;
  private interrupted = false;
  /** The watch stopped the rollout with the batch on the new release: nothing is rolled back. */
  private halted = false;
  /** The watch could not judge a batch: the roll stopped there, for a human to decide. */
  private blind = false;
  /** How many servers may fail while the roll goes on (`rolling.maxFailed`); undefined: none, the first failure stops it. */
  private readonly budget: number | undefined;
  /** The servers the budget has absorbed: unreachable ones, then those whose gate failed. */
  private readonly lost: string[];
  /** The servers the roll was given, and those --skip-unreachable left out. */
  private readonly fleetSize: number;

  constructor(private readonly o: RollOptions) {
    this.ledger = new RollLedger(o.emit, o.target, o.batches.flat());
    const driver = o.strategy ?? strategyNamed(o.config.rolling.strategy);
    this.strategy = driver.create(o, this.ledger);
    const unreachable = o.unreachable ?? [];
    this.fleetSize = o.batches.flat().length + unreachable.length;
    this.budget = failureBudget(o.config.rolling.maxFailed, this.fleetSize);
    // Without a budget, --skip-unreachable leaves those servers out with a warning and the roll
    // succeeds without them; with one, they are spent from it first.
    this.lost = this.budget === undefined ? [] : [...unreachable];
  }

  async run(): Promise<RollResult> {
    const overBudget = unreachableOverBudget(this.o.config.rolling.maxFailed, this.fleetSize, this.lost);
    if (overBudget) return this.spentBeforeStart(overBudget);
    try {
      try {
        await this.strategy.begin();
        await this.rollForward();
        if (!(await this.strategy.rejoin())) this.failure = true;
      } catch (error) {
        await this.stoppedBy(error);
      }
      const done = this.ledger.deployed();
      if (
        this.failure &&
        !this.interrupted &&
        !this.halted &&
        this.o.onFailure === "rollback-all" &&
        done.length > 0
      ) {
        await this.rollBack(done);
      }
      this.sayBudget();
      // Servers lost within the budget: the roll finished, and still failed them.
      const failure = this.failure || this.lost.length > 0;
      return this.ledger.result({ failure, interrupted: this.interrupted, needsHuman: this.blind });
    } finally {
      // What the strategy left running in the background (a surge's old processes being
      // retired after a move back) is done before the result.
      await this.strategy.settle?.();
      this.o.ops.discardPrepared?.();
      // What the balancer still writes (HAProxy's state file) is done, and said, before the result.
      await this.o.ops.balancer.settle?.();
    }
  }

  /**
   * A step that has no failure path of its own threw (the balancer's state read for the capacity
   * guard or the watch lost its connection; a bug): what the strategy holds is brought back to a
   * known state, so no server is left out of traffic without a word.
   */
  private async stoppedBy(error: unknown): Promise<void> {
    this.failure = true;
    // Interrupted meanwhile: no rollback-all after it, as after any interruption.
    this.interrupted ||= this.o.signal.aborted;
    this.o.emit({ type: "error", message: `the roll stopped: ${(error as Error).message}` });
    await this.strategy.abandon(error);
  }

  private async rollForward(): Promise<void> {
    const { batches, signal, emit } = this.o;
    for (const [index, batch] of batches.entries()) {
      if (signal.aborted) {
        this.interrupted = true;
        return;
      }
      if (index > 0 && this.o.pauseMs && !(await this.pause())) return;
      const label = this.o.canary && index === 0 ? "canary" : `batch ${index + 1}/${batches.length}`;
      emit({ type: "phase", phase: "roll", message: `${label}: ${batch.map((s) => s.name).join(", ")}` });
      const move = await this.strategy.forward(batch);
      if (!move.moved) {
        this.interrupted ||= move.interrupted;
        this.failure ||= move.failure;
        return;
      }
      if (move.failed.length > 0) {
        if (!this.absorbs(move.failed, index)) return this.gateFailed(move.passed, move.failed, index);
        await this.tolerate(move.failed);
      }
      const passed = move.passed;
      if (passed.length === 0) continue;
      this.ledger.markDeployed(passed);
      if (!(await this.strategy.serve(passed, this.o.watch !== undefined))) {
        this.failure = true;
        return;
      }
      const stop = await this.o.watch?.(passed, signal);
      if (stop) return this.watchStopped(passed, stop);
    }
  }

  /**
   * Whether the failure budget takes these failed servers, so the roll goes on without them. Never
   * for the canary (it is there to stop the roll) or once interrupted.
   */
  private absorbs(failed: readonly ServerConfig[], index: number): boolean {
    if (this.o.signal.aborted || (this.o.canary && index === 0)) return false;
    return withinBudget(this.budget, this.lost.length, failed.length);
  }

  /**
   * Servers whose gate failed, within the budget: back on their previous release, then out of
   * rotation again (`rolling.failedServers: "drained"`, the default) or left in. Each is "failed" in
   * the summary, which says where it is; a server that could not be restored needs a human.
   */
  private async tolerate(failed: readonly ServerConfig[]): Promise<void> {
    const { emit, ops, config } = this.o;
    this.lost.push(...failed.map((s) => s.name));
    for (const s of failed) this.ledger.row(s.name).note = "failed its health gate";
    await this.strategy.restore(failed, "restored");
    const back = failed.filter((s) => this.ledger.row(s.name).result === "restored");
    let drained = false;
    if (back.length > 0 && config.rolling.failedServers === "drained") {
      try {
        await ops.balancer.apply({ drain: back });
        drained = true;
      } catch (error) {
        emit({
          type: "warn",
          message: `failure budget: taking ${back.map((s) => s.name).join(", ")} out of rotation again failed (${(error as Error).message.split("\n")[0]}): left in rotation on the previous release`,
        });
      }
    }
    for (const s of back) {
      const row = this.ledger.row(s.name);
      const where = drained
        ? `left out of rotation: \`${nexusCommand("enable", s.name)}\` once fixed`
        : "in rotation";
      row.result = "failed";
      row.note = `failed its health gate: back on ${row.release ?? "its previous release"}, ${where}`;
    }
    emit({
      type: "warn",
      message: `failure budget (rolling.maxFailed): ${failed.map((s) => s.name).join(", ")} failed, ${describeBudget(config.rolling.maxFailed ?? 0, this.budget ?? 0, this.lost.length)}; the roll goes on`,
    });
  }

  /** More servers unreachable than the budget allows: nothing is touched. */
  private spentBeforeStart(message: string): RollResult {
    this.o.emit({ type: "error", message });
    for (const s of this.o.batches.flat())
      this.ledger.row(s.name).note = "not rolled: too many servers unreachable";
    return this.ledger.result({ failure: true, interrupted: false });
  }

  /** At the end: which servers the budget absorbed, and where each is, for a human to look at. */
  private sayBudget(): void {
    if (this.budget === undefined || this.lost.length === 0) return;
    const unreachable = new Set(this.o.unreachable ?? []);
    const which = this.lost.map((name) => {
      if (unreachable.has(name)) return `${name} (unreachable)`;
      const row = this.ledger.row(name);
      return `${name} (${row.note ?? row.result})`;
    });
    const spent = describeBudget(this.o.config.rolling.maxFailed ?? 0, this.budget, this.lost.length);
    this.o.emit({
      type: "error",
      message: `failed within the failure budget (rolling.maxFailed, ${spent}): ${which.join("; ")}`,
    });
  }

  /** Between batches: what waits to go back in traffic does, then the pause. False when the roll stops. */
  private async pause(): Promise<boolean> {
    const { signal, emit, pauseMs = 0 } = this.o;
    if (!(await this.strategy.rejoin())) {
      this.failure = true;
      return false;
    }
    emit({ type: "info", message: `pausing ${pauseMs / 1000}s before the next batch` });
    await sleep(pauseMs, signal);
    if (signal.aborted) this.interrupted = true;
    return !signal.aborted;
  }

  /**
   * Some servers of the batch failed their gate: they go back to their previous release. Under
   * "halt" (or when interrupted) the verified ones keep the new release; under "rollback-all"
   * they go back too, and so does every server already done (run).
   */
  private async gateFailed(passed: ServerConfig[], failed: ServerConfig[], index: number): Promise<void> {
    const { signal } = this.o;
    this.failure = true;
    this.interrupted = signal.aborted;
    for (const s of failed) {
      this.ledger.row(s.name).note = signal.aborted
        ? "interrupted before its gate passed"
        : this.o.canary && index === 0
          ? "canary failed its health gate"
          : "failed its health gate";
    }
    if (this.o.onFailure === "halt" || this.interrupted) {
      this.ledger.markDeployed(passed);
      await this.strategy.serve(passed, false);
      await this.strategy.restore(failed, "restored");
    } else {
      await this.strategy.restore([...failed, ...passed], "rolled back");
    }
  }

  /**
   * The watch stopped the rollout on the batch: "halt" leaves it as it is (nothing proved it bad),
   * and so does "needs-human" (nothing was judged: exit 3); "rollback", like a failed gate, sends it back. An interruption during the window stops there.
   */
  private async watchStopped(batch: ServerConfig[], stop: WatchStop) {
    const breach = stop.reason;
    if (stop.action === "needs-human") {
      // Not judged is not bad: the batch stays on its new release, in rotation; the roll stops
      // before the next batch, and a human decides (deploy again, or roll back).
      this.blind = true;
      for (const s of batch) this.ledger.row(s.name).note = `${breach}: not judged, deploy stopped here`;
      this.o.emit({
        type: "error",
        message: `NEEDS A HUMAN: ${breach}; ${batch.map((s) => s.name).join(", ")} stay on the new release, in rotation, unjudged, and the deploy stops here: check the balancer's traffic, then deploy again or roll back`,
      });
      return;
    }
    this.failure = true;
    if (stop.action === "halt" && !this.o.signal.aborted) {
      this.halted = true;
      for (const s of batch) this.ledger.row(s.name).note = breach;
      return;
    }
    this.interrupted = this.o.signal.aborted;
    for (const s of batch) this.ledger.row(s.name).note = breach;
    this.ledger.undoLast(batch);
    const result = this.interrupted || this.o.onFailure === "halt" ? "restored" : "rolled back";
    await this.strategy.back(batch, result, breach);
  }

  /** Every server already done goes back to its previous release, batch by batch. */
  private async rollBack(done: ServerConfig[]): Promise<void> {
    const { emit, signal } = this.o;
    emit({ type: "phase", phase: "rollback", message: `rolling back ${done.map((s) => s.name).join(", ")}` });
    const size = Math.max(1, ...this.o.batches.map((b) => b.length));
    for (let i = 0; i < done.length; i += size) {
      if (signal.aborted) {
        // The batch in hand was restored; the rest stays on the new release, which passed its gate.
        this.interrupted = true;
        for (const s of done.slice(i)) this.ledger.row(s.name).note = "interrupted: still on the new release";
        return;
      }
      await this.strategy.back(done.slice(i, i + size), "rolled back");
    }
  }
}
