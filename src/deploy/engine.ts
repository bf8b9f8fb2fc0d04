import { nexusCommand } from "../config/invocation.js";
import type { Config, ServerConfig } from "../config/load.js";
import { UsageError } from "../errors.js";
import type { Emit, Outcome, SummaryRow } from "../events/events.js";
import { exitCodeForOutcome } from "../events/events.js";
import { type RemoteOp, runOps } from "../remote/op.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
import { type RollOptions, type RollResult, roll } from "../rollout/roll.js";
import { allServers, type Fleet, type Host, withFleet } from "./fleet.js";
import { historyLine, recordHistory } from "./history.js";
import {
  clearJournals,
  type JournalEntry,
  LockError,
  type LockHolder,
  lockAll,
  markReleased,
  unlockAll,
  unlockOp,
  writeJournals,
} from "./lock.js";
import type { Plan } from "./plan.js";
import { readState, type ServerState } from "./state.js";
import { assertSurgeMemory } from "./surge-memory.js";

/**
 * The skeleton every command that changes the fleet shares (deploy, rollback, recover):
 * lock → read → journal → roll → clear journals → history → summary → unlock, so each command
 * only says what it changes and where to.
 */

export interface CommandResult {
  exitCode: number;
  outcome: Outcome;
  release?: string;
}

/** What the commands that roll a plan (deploy, rollback, restart) take from the CLI. */
export interface RollCommandOptions {
  emit: Emit;
  signal: AbortSignal;
  only?: string[];
  acceptNew?: boolean;
  verbose?: boolean;
  lockWaitMs?: number;
  /** Kept up to date with the servers out of rotation, for the CLI's second Ctrl-C. */
  inHand?: Set<string>;
}

/** Emits the summary event and the result every command ends with. */
export function summarize(
  emit: Emit,
  startedAt: number,
  outcome: Outcome,
  rows: SummaryRow[],
  release?: string,
  exitCode = exitCodeForOutcome(outcome),
): CommandResult {
  emit({ type: "summary", outcome, release, rows, exitCode, seconds: (Date.now() - startedAt) / 1000 });
  return { exitCode, outcome, release };
}

/** Runs `body` holding the deploy lock on every host; the locks are released on every exit path. */
export async function withLocks<T>(
  fleet: Fleet,
  hosts: Host[],
  holder: LockHolder,
  emit: Emit,
  lockWaitMs: number | undefined,
  body: () => Promise<T>,
): Promise<T> {
  await lockAll(hosts, holder, emit, lockWaitMs);
  try {
    return await body();
  } finally {
    // A connection lost along the way is opened again so the lock does not outlive us.
    await fleet.revive(hosts);
    await unlockAll(hosts, holder);
  }
}

export interface PlannedFleet {
  fleet: Fleet;
  /** The plan's servers. */
  hosts: Host[];
  /** Each planned server's state, read under the lock. */
  states: Map<string, ServerState>;
}

/**
 * Connects to every server (the capacity guard checks the unplanned ones live), locks the
 * plan's servers, reads their state and runs `body`; locks and sessions are released on every
 * exit path.
 */
export async function withPlannedFleet<T>(
  config: Config,
  plan: Plan,
  holder: LockHolder,
  options: RollCommandOptions,
  body: (planned: PlannedFleet) => Promise<T>,
): Promise<T> {
  const { emit } = options;
  const fleetOptions = { emit, acceptNew: options.acceptNew, verbose: options.verbose };
  return withFleet(config, allServers(config), fleetOptions, (fleet) => {
    const hosts = plan.servers.map((s) => fleet.host(s.name));
    return withLocks(fleet, hosts, holder, emit, options.lockWaitMs, async () => {
      const states = await readStatesToRoll(hosts);
      assertStrategyFits(config, states);
      await assertSurgeMemory(config, fleet, hosts, states);
      return body({ fleet, hosts, states });
    });
  });
}

/**
 * Each host's state, read under the lock, for a command that will roll it. A journal there is an
 * earlier command's that did not finish (killed, or it ended needing a human): the server may be
 * drained or mid-switch, and rolling over it would overwrite what `nexus recover` needs (the
 * release to go back to) and take the server for one an operator drained. Refused until recovered.
 */
export async function readStatesToRoll(hosts: Host[]): Promise<Map<string, ServerState>> {
  const states = new Map<string, ServerState>();
  await Promise.all(hosts.map(async (h) => states.set(h.server.name, await readState(h))));
  const unfinished = [...states].flatMap(([name, state]) =>
    state.journal
      ? [
          `${name}: a ${state.journal.command} of ${state.journal.release}${state.journal.time ? ` (${state.journal.time})` : ""} did not finish here`,
        ]
      : [],
  );
  if (unfinished.length > 0) {
    throw new LockError(
      `${unfinished.join("\n")}\n  fix: \`${nexusCommand("status")}\` shows where each server stands; \`${nexusCommand("recover")}\` brings it back (if it needs a human, once the cause is fixed)`,
    );
  }
  return states;
}

/**
 * A server the surge strategy left on app.surgePort runs the app as that port's process
 * ("<name>-<port>"), which the drain strategy (one process, on app.port) does not know: refused
 * before anything changes. On app.port it is the app's own process: any strategy goes on.
 */
function assertStrategyFits(config: Config, states: Map<string, ServerState>): void {
  if (config.rolling.strategy === "surge") return;
  const surged = [...states].filter(
    ([, state]) => state.livePort !== undefined && state.livePort !== config.app.port,
  );
  if (surged.length === 0) return;
  throw new UsageError(
    `${surged.map(([name, state]) => `${name} serves from the surge strategy's process on port ${state.livePort}`).join("; ")}: the ${config.rolling.strategy} strategy does not know it\n  fix: roll with --strategy surge (or rolling.strategy "surge")`,
  );
}

/**
 * Rolls with a journal on each host saying what is about to change (so that a killed command
 * can be recovered); journals are cleared afterwards, except where a human is needed.
 */
export async function rollJournaled(
  hosts: Host[],
  journal: ((host: Host) => JournalEntry) | undefined,
  options: RollOptions,
): Promise<RollResult> {
  // Read once for both: the journal records an operator's drain, which `recover` must keep.
  const initialStates = options.initialStates ?? (await options.ops.balancer.state(options.config.servers));
  const drained = new Set(initialStates.filter((b) => b.present && !b.inRotation).map((b) => b.server));
  if (journal)
    await writeJournals(hosts, (h) => ({
      ...journal(h),
      ...(drained.has(h.server.name) ? { drained: true } : {}),
    }));
  const result = await roll({ ...options, initialStates });
  const needsHuman = new Set(result.rows.filter((r) => r.result === "needs human").map((r) => r.server));
  await clearJournals(hosts.filter((h) => !needsHuman.has(h.server.name)));
  return result;
}

/** Where a roll moves each server, and what the command adds to the engine's defaults. */
export interface RollMoves {
  batches: ServerConfig[][];
  /** The release each server should end on. */
  target: (server: string) => string;
  /** What to go back to if that fails (the release it served before), if any. */
  fallback: (server: string) => string | undefined;
  canary?: boolean;
  pauseMs?: number;
  watch?: RollOptions["watch"];
  unreachable?: RollOptions["unreachable"];
}

/** The roll's options, as every command that rolls a plan (deploy, rollback, restart) gives them. */
export function rollOptions(
  config: Config,
  plan: Plan,
  ops: FleetOps,
  options: RollCommandOptions,
  moves: RollMoves,
): RollOptions {
  return {
    config,
    ops,
    emit: options.emit,
    signal: options.signal,
    minInRotation: plan.minInRotation,
    onFailure: config.rolling.onFailure,
    inHand: options.inHand,
    ...moves,
  };
}

/**
 * The record phase every command that changed servers ends with, once its result is said: the
 * process manager persists what each touched server runs now, and each host gets a history line
 * (with `finish`: the command's own tidying, pruning for a deploy, and the lock's release in the
 * same exchange). Nothing here fails the command.
 */
export async function record(
  ops: FleetOps,
  touched: string[],
  hosts: Host[],
  event: string,
  details: (host: Host) => Record<string, unknown>,
  finish?: Finish,
): Promise<void> {
  await Promise.allSettled([ops.persist(touched), recordAll(hosts, event, details, finish)]);
}

export interface Finish {
  /** The lock to let go of, in the same exchange, once the history line is written. */
  unlock: LockHolder;
  /** What to do on the host before the history line (prune releases, mark one failed). */
  first?: (host: Host) => RemoteOp<unknown>[];
}

/**
 * One history line per host, in parallel; a host that cannot be written to does not fail the
 * command. With `finish`, what follows a command's result on a host is one exchange: `first`, the
 * history line, and the lock's release, one after the other (issue 30: few round trips).
 */
export async function recordAll(
  hosts: Host[],
  event: string,
  details: (host: Host) => Record<string, unknown>,
  finish?: Finish,
): Promise<void> {
  if (!finish) {
    await Promise.allSettled(hosts.map((h) => recordHistory(h, event, details(h))));
    return;
  }
  await Promise.allSettled(
    hosts.map(async (h) => {
      const ops = [
        ...(finish.first?.(h) ?? []),
        historyLine(h, event, details(h)),
        unlockOp(h, finish.unlock),
      ];
      const results = await runOps(h.session, ops);
      // Released: the lock's removal ran (whether it found our token or not). Else withLocks tries again.
      if (results.at(-1)?.status === "fulfilled") markReleased(finish.unlock, h);
    }),
  );
}
