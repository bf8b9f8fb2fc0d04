import type { Config } from "../config/load.js";
import type { CommandResult } from "./deploy.js";
import { type Emit, exitCodeFor, type Outcome, type SummaryRow } from "./events.js";
import { Fleet } from "./fleet.js";
import { readState, recordHistory } from "./host-ops.js";
import { clearJournals, lockAll, newHolder, unlockAll, writeJournals } from "./lock.js";
import { makePlan, PlanError } from "./plan.js";
import { roll } from "./roll.js";
import { previousRelease, type ServerState } from "./state.js";

export interface RollbackOptions {
  emit: Emit;
  signal: AbortSignal;
  to?: string;
  only?: string[];
  acceptNew?: boolean;
  verbose?: boolean;
  lockWaitMs?: number;
  inHand?: Set<string>;
}

/**
 * Rolls the fleet back to the previous release (or --to <id>) with the same drain and gate
 * discipline as a deploy. The target is already on disk on every server: no transfer.
 */
export async function rollback(config: Config, options: RollbackOptions): Promise<CommandResult> {
  const { emit, signal } = options;
  const startedAt = Date.now();
  const plan = makePlan(config, options.to ?? "previous", options.only);
  const names = plan.servers.map((s) => s.name);
  const fleet = await Fleet.open(
    config,
    config.servers.map((s) => s.name),
    {
      emit,
      acceptNew: options.acceptNew,
      verbose: options.verbose,
    },
  );
  const hosts = plan.servers.map((s) => fleet.host(s.name));
  const holder = newHolder("rollback", options.to);
  let locked = false;
  const finish = (
    outcome: Outcome,
    rows: SummaryRow[],
    exitCode: number,
    release?: string,
  ): CommandResult => {
    emit({ type: "summary", outcome, release, rows, exitCode, seconds: (Date.now() - startedAt) / 1000 });
    return { exitCode, outcome, release };
  };
  try {
    await lockAll(hosts, holder, emit, options.lockWaitMs);
    locked = true;
    const states = new Map<string, ServerState>();
    await Promise.all(hosts.map(async (h) => states.set(h.server.name, await readState(h))));
    const targets = new Map<string, string>();
    const problems: string[] = [];
    for (const h of hosts) {
      const state = states.get(h.server.name) as ServerState;
      const target = options.to ?? previousRelease(state);
      if (!target) problems.push(`${h.server.name}: no earlier release on disk to roll back to`);
      else if (!state.releases.some((r) => r.id === target))
        problems.push(`${h.server.name}: release ${target} is not on disk`);
      else targets.set(h.server.name, target);
    }
    if (problems.length > 0) throw new PlanError(`cannot roll back:\n  ${problems.join("\n  ")}`);
    const distinct = [...new Set(targets.values())];
    emit({ type: "begin", command: "rollback", release: distinct.join(", "), servers: names });

    const batches = plan.batches
      .map((batch) => batch.filter((s) => states.get(s.name)?.current !== targets.get(s.name)))
      .filter((batch) => batch.length > 0);
    if (batches.length === 0) {
      emit({ type: "info", message: "every server already serves its rollback target" });
    }
    await writeJournals(hosts, (h) => ({
      command: "rollback",
      release: targets.get(h.server.name) as string,
      previous: states.get(h.server.name)?.current ?? null,
    }));
    const result = await roll({
      config,
      fleet,
      emit,
      signal,
      batches,
      target: (name) => targets.get(name) as string,
      fallback: (name) => states.get(name)?.current,
      minInRotation: plan.minInRotation,
      onFailure: config.rolling.onFailure,
      inHand: options.inHand,
    });
    await clearJournals(
      hosts.filter((h) => result.rows.find((r) => r.server === h.server.name)?.result !== "needs human"),
    );
    const rows = names.map(
      (server) =>
        result.rows.find((r) => r.server === server) ?? {
          server,
          result: "deployed" as const,
          release: targets.get(server),
          note: "already on it",
        },
    );
    for (const row of rows) if (row.result === "deployed") row.result = "rolled back";
    await Promise.allSettled(
      hosts.map((h) =>
        recordHistory(h, "rollback", {
          release: targets.get(h.server.name),
          previous: states.get(h.server.name)?.current ?? null,
          result: rows.find((r) => r.server === h.server.name)?.result,
        }),
      ),
    );
    return finish(result.outcome, rows, exitCodeFor(result.outcome), distinct.join(", "));
  } finally {
    if (locked) await unlockAll(hosts, holder);
    fleet.close();
  }
}
