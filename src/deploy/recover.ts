import { nexusCommand } from "../config/invocation.js";
import { type Config, requireSecrets } from "../config/load.js";
import type { Emit, SummaryRow } from "../events/events.js";
import { minInRotation } from "../rollout/capacity.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
import { type RollResult, roll } from "../rollout/roll.js";
import { record, summarize, withLocks } from "./engine.js";
import { allServers, type Fleet, type Host, withFleet } from "./fleet.js";
import { fleetOps } from "./fleet-ops.js";
import { checkHealth, servingPort } from "./health-check.js";
import {
  breakLock,
  clearJournals,
  describeHolder,
  isLiveHere,
  isStale,
  LockError,
  newHolder,
} from "./lock.js";
import { keepServing } from "./recover-keep.js";
import { readState, type ServerState } from "./state.js";

export interface RecoverOptions {
  emit: Emit;
  signal: AbortSignal;
  acceptNew?: boolean;
  verbose?: boolean;
  /** Take over a lock held from another machine (its liveness cannot be checked from here). */
  force?: boolean;
}

/**
 * After a deploy or rollback was killed (kill -9, a crashed CI runner): every server it had
 * started to change goes back to the release it served before that command, with the usual
 * drain and gate, and back in rotation; then journals and locks are cleared. Servers an
 * operator drained by hand are left drained (the journal says which were, before that command).
 */
export async function recover(config: Config, options: RecoverOptions): Promise<number> {
  const startedAt = Date.now();
  const names = allServers(config);
  if (config.hooks.afterStart) requireSecrets(config, "hooks.afterStart runs with the app's environment");
  return withFleet(config, names, options, async (fleet) => {
    const hosts = names.map((n) => fleet.host(n));
    const states = new Map<string, ServerState>();
    await Promise.all(hosts.map(async (h) => states.set(h.server.name, await readState(h))));
    await breakInspectedLocks(hosts, states, options.force);
    return withLocks(
      fleet,
      hosts,
      newHolder("recover", undefined, config.destination),
      options.emit,
      0,
      async () => {
        const journaled = hosts.filter((h) => states.get(h.server.name)?.journal);
        if (journaled.length === 0) {
          options.emit({
            type: "info",
            message: "no interrupted deploy found: nothing to recover (stale locks were cleared)",
          });
          return summarize(options.emit, startedAt, "success", []).exitCode;
        }
        return recoverJournaled({ config, options, fleet, states, journaled, startedAt });
      },
    );
  });
}

/** A recovery under way: the servers a killed command left journals on, and their state. */
interface Recovery {
  config: Config;
  options: RecoverOptions;
  fleet: Fleet;
  states: Map<string, ServerState>;
  journaled: Host[];
  startedAt: number;
}

/** Every journaled server back on its target, in rotation (an operator's drain kept); then the record. */
async function recoverJournaled(recovery: Recovery): Promise<number> {
  const { config, options, fleet, states, journaled, startedAt } = recovery;
  const { emit } = options;
  for (const h of journaled) {
    const j = states.get(h.server.name)?.journal;
    emit({
      type: "warn",
      server: h.server.name,
      message: `interrupted ${j?.command ?? "command"} of ${j?.release ?? "?"} (pid ${j?.pid ?? "?"} on ${j?.host ?? "?"}, ${j?.time ?? "?"})`,
    });
  }
  const ops = fleetOps(fleet, config, emit);
  const { result, kept } = await switchBack(recovery, ops);
  const rows = new Map<string, SummaryRow>(result.rows.map((r) => [r.server, { ...r }]));
  for (const r of rows.values()) if (r.result === "deployed") r.result = "restored";
  for (const [name, row] of kept) rows.set(name, row);
  await enableLeftDrained(recovery, rows);
  await fleet.balancer.settle?.();
  const list = [...rows.values()];
  const outcome = list.some((r) => r.result === "needs human") ? "needs-human" : result.outcome;
  // The killed command's journals are cleared where everything is back in order; a server
  // recover did not reach (it halted first) keeps its own, for the next recover.
  await clearJournals(journaled.filter((h) => rows.get(h.server.name)?.result === "restored"));
  const done = summarize(emit, startedAt, outcome, list);
  // A kept server's PM2 list is saved too: the killed command's process was stopped there.
  await record(ops, [...result.touched, ...kept.keys()], journaled, "recover", (h) => ({
    release: rows.get(h.server.name)?.release ?? null,
    result: rows.get(h.server.name)?.result,
  }));
  return done.exitCode;
}

/**
 * The release each journaled server served before the killed command, while it is still on disk
 * (one removed by hand since would leave `current` dangling): else the one current now.
 */
function recoveryTarget(states: Map<string, ServerState>, name: string): string | undefined {
  const state = states.get(name);
  const previous = state?.journal?.previous;
  return previous && state.releases.some((r) => r.id === previous) ? previous : state?.current;
}

/**
 * The journaled servers that must change (switched by the killed command, or drained by it) rolled
 * onto their target, one at a time, halting at the first failure; those whose serving process
 * still runs their target are kept instead (recover-keep.ts), with their summary rows.
 */
async function switchBack(
  recovery: Recovery,
  ops: FleetOps,
): Promise<{ result: RollResult; kept: Map<string, SummaryRow> }> {
  const { config, options, fleet, states, journaled } = recovery;
  const { emit } = options;
  const targetOf = (name: string) => recoveryTarget(states, name);
  for (const h of journaled) {
    const previous = states.get(h.server.name)?.journal?.previous;
    if (previous && targetOf(h.server.name) !== previous)
      emit({
        type: "warn",
        server: h.server.name,
        message: `${previous}, the release it served before, is no longer on disk: it stays on ${targetOf(h.server.name) ?? "no release"}`,
      });
  }
  // A server still drained may also have its app stopped or crashed (PM2 gives up after its
  // restarts): it is restarted on its target and gated like the ones that switch.
  const backends = await fleet.balancer.state(config.servers);
  const drainedNow = new Set(backends.filter((b) => b.present && !b.inRotation).map((b) => b.server));
  // An operator's drain (before the killed command) is left alone when that command did not
  // switch the server: it may be out for a reason (broken), and its gate would halt the rest.
  const byOperator = (name: string) => states.get(name)?.journal?.drained === true;
  // Order: what the killed command drained (restoring it costs no capacity, and puts back in
  // rotation what the guard needs), then servers in rotation, an operator's drains last.
  const rank = (name: string) => (byOperator(name) ? 2 : drainedNow.has(name) ? 0 : 1);
  const mustChange = journaled.filter((h) => {
    const name = h.server.name;
    const target = targetOf(name);
    const switched = target !== states.get(name)?.current;
    return target && (switched || (drainedNow.has(name) && !byOperator(name)));
  });
  const kept = await keepServing({ config, fleet, emit, states, backends, targetOf }, mustChange);
  const toSwitch = mustChange
    .filter((h) => !kept.has(h.server.name))
    .sort((a, b) => rank(a.server.name) - rank(b.server.name));
  emit({
    type: "phase",
    phase: "recover",
    message: `${toSwitch.length} server(s) to put back on their previous release, restarted and gated`,
  });
  const result = await roll({
    config,
    ops,
    emit,
    signal: options.signal,
    batches: toSwitch.map((h) => [h.server]),
    target: (name) => targetOf(name) as string,
    fallback: (name) => states.get(name)?.current,
    minInRotation: minInRotation(config),
    onFailure: "halt",
    // Drained by the killed command: back in rotation; drained by an operator before it: left so.
    enableDrained: (name) => !byOperator(name),
  });
  return { result, kept };
}

/**
 * Journaled servers that were already on the right release may still be drained: back in
 * rotation if their release passes /health (unless an operator had drained them), else a human.
 */
async function enableLeftDrained(recovery: Recovery, rows: Map<string, SummaryRow>): Promise<void> {
  const { config, options, fleet, states, journaled } = recovery;
  const backends = await fleet.balancer.state(config.servers);
  for (const h of journaled) {
    if (rows.has(h.server.name)) continue;
    const row: SummaryRow = {
      server: h.server.name,
      result: "restored",
      release: states.get(h.server.name)?.current,
    };
    rows.set(h.server.name, row);
    const backend = backends.find((b) => b.server === h.server.name);
    if (!backend?.present || backend.inRotation) continue;
    if (states.get(h.server.name)?.journal?.drained) {
      row.note = "drained before the interrupted command: left drained";
      continue;
    }
    if ((await checkHealth(h, config, servingPort(config, states.get(h.server.name)?.livePort))).ok) {
      await fleet.balancer.apply({ enable: [h.server] });
      row.note = "was left drained: back in rotation";
    } else {
      row.result = "needs human";
      row.note = "drained, and its current release fails /health";
      options.emit({ type: "error", server: h.server.name, message: `NEEDS A HUMAN: ${row.note}` });
    }
  }
}

/**
 * Breaks the locks of commands that are gone, each only if it still holds the holder inspected
 * (a command that took a lock since is never dispossessed). A holder that may be alive (in this
 * machine's pid space with its pid running, or anywhere nexus cannot look: another machine, another
 * container with this hostname) stops recover unless --force says it is dead.
 */
async function breakInspectedLocks(
  hosts: Host[],
  states: Map<string, ServerState>,
  force?: boolean,
): Promise<void> {
  for (const h of hosts) {
    const lock = states.get(h.server.name)?.lock;
    if (!lock || isStale(lock) || force) continue;
    if (isLiveHere(lock)) {
      throw new LockError(
        `${h.server.name}: ${describeHolder(lock)} is still running; let it finish or stop it first (if that pid is another program now, \`${nexusCommand("recover", "--force")}\`)`,
      );
    }
    throw new LockError(
      `${h.server.name}: locked by ${describeHolder(lock)} elsewhere (another machine, or a container or pid namespace with this hostname), where it may still be running (a CI job); only if that command is dead, run \`${nexusCommand("recover", "--force")}\``,
    );
  }
  for (const h of hosts) {
    const lock = states.get(h.server.name)?.lock;
    if (lock && !(await breakLock(h, lock))) {
      throw new LockError(
        `${h.server.name}: the lock changed while recover inspected it: another command started; run recover again once it ends`,
      );
    }
  }
}
