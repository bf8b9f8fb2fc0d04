import type { Config, ServerConfig } from "../config/load.js";
import type { FleetOps } from "./fleet-ops.js";
import type { RollLedger } from "./ledger.js";
import type { RollOptions } from "./roll.js";

/**
 * How a batch of servers moves from one release to another, behind the balancer: what a
 * rollout strategy decides, per server (`rolling.strategy`; strategies.ts lists them). The engine
 * (roll.ts) decides the rest, the same for every strategy: batches, pauses, the canary, the
 * watch window, interruptions, and what a failure costs (rollback-all or halt).
 *
 * "drain" (drain/): a server leaves rotation, restarts onto the release, passes its gate, and
 * comes back; capacity drops by a batch meanwhile. "surge" (surge/): the new release started
 * beside the old one on a second port, gated there, the balancer switched over: capacity never drops.
 */
export interface RolloutStrategy {
  /** Before the first batch: restarts readied, the balancer's state noted. */
  begin(): Promise<void>;
  /**
   * Moves a batch onto its target release and through its gate. "moved": which servers passed
   * and which failed (those are out of traffic, for `restore`); "held": nothing on the batch
   * changed (a guard refused, the balancer failed, or an interruption came first), `failure` when
   * the roll cannot go on.
   */
  forward(batch: readonly ServerConfig[]): Promise<BatchMove>;
  /**
   * Servers that passed take traffic: `now` (before the watch judges them), or whenever the
   * strategy's next change comes (a drain's next balancer change). False when they could not.
   */
  serve(servers: readonly ServerConfig[], now: boolean): Promise<boolean>;
  /** Whatever still waits to take traffic does (before a pause, and at the end). False when it could not. */
  rejoin(): Promise<boolean>;
  /** Servers out of traffic (their gate failed) go back to their fallback release, and take traffic. */
  restore(servers: readonly ServerConfig[], result: "rolled back" | "restored"): Promise<void>;
  /**
   * Servers on the target and in traffic go back to their fallback (the watch found a rise:
   * `reason`; or rollback-all). One that cannot be moved back needs a human.
   */
  back(servers: readonly ServerConfig[], result: "rolled back" | "restored", reason?: string): Promise<void>;
  /** The roll stopped on an error: the servers in the strategy's hands come back to a known state. */
  abandon(error: unknown): Promise<void>;
  /** Work it left running in the background is done (never throws): the roll is about to end. */
  settle?(): Promise<void>;
}

export type BatchMove =
  | { moved: true; passed: ServerConfig[]; failed: ServerConfig[] }
  | { moved: false; interrupted: boolean; failure: boolean };

/** A strategy as the config names it (`rolling.strategy`). */
export interface RolloutStrategyDriver {
  readonly name: string;
  /** The strategy for one roll: its options, and the ledger the engine and the strategy both write. */
  create(options: RollOptions, ledger: RollLedger): RolloutStrategy;
  /**
   * As staging begins, long before the server's turn: its restart onto `release` readied the way
   * this strategy will start it (`livePort`: the port the server's record says serves).
   */
  prepareAhead(
    ops: FleetOps,
    config: Config,
    server: ServerConfig,
    release: string,
    livePort: number | undefined,
  ): void;
}
