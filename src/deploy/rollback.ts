import { type Config, requireSecrets } from "../config/load.js";
import type { SummaryRow } from "../events/events.js";
import { startOf } from "../start/load.js";
import {
  type CommandResult,
  type RollCommandOptions,
  record,
  rollJournaled,
  rollOptions,
  summarize,
  withPlannedFleet,
} from "./engine.js";
import { fleetOps } from "./fleet-ops.js";
import { newHolder } from "./lock.js";
import { makePlan, PlanError } from "./plan.js";
import { previousRelease, type ServerState } from "./state.js";

export interface RollbackOptions extends RollCommandOptions {
  to?: string;
}

/**
 * Rolls the fleet back to the previous release (or --to <id>) with the same drain and gate
 * discipline as a deploy. The target is already on disk on every server: no transfer.
 */
export async function rollback(config: Config, options: RollbackOptions): Promise<CommandResult> {
  const { emit } = options;
  const startedAt = Date.now();
  const plan = makePlan(config, options.to ?? "previous", options.only);
  const names = plan.servers.map((s) => s.name);
  // The release's process file is on the server already; only the hook needs the values.
  if (config.hooks.afterStart)
    requireSecrets(config, "hooks.afterStart runs with the app's environment", names);
  // The surge strategy writes a process file for the other port from app.start: checked first.
  if (config.rolling.strategy === "surge") startOf(config);
  const holder = newHolder("rollback", options.to, config.destination);
  return withPlannedFleet(config, plan, holder, options, async ({ fleet, hosts, states }) => {
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
    const release = [...new Set(targets.values())].join(", ");
    const { destination } = config;
    emit({
      type: "begin",
      command: "rollback",
      release,
      ...(destination ? { destination } : {}),
      servers: names,
    });

    const targetOf = (name: string) => targets.get(name) as string;
    const current = (name: string) => states.get(name)?.current;
    const batches = plan.batches
      .map((batch) => batch.filter((s) => current(s.name) !== targetOf(s.name)))
      .filter((batch) => batch.length > 0);
    if (batches.length === 0)
      emit({ type: "info", message: "every server already serves its rollback target" });
    const ops = fleetOps(fleet, config, emit, states);
    const result = await rollJournaled(
      hosts,
      (h) => ({
        command: "rollback",
        release: targetOf(h.server.name),
        previous: current(h.server.name) ?? null,
      }),
      rollOptions(config, plan, ops, options, { batches, target: targetOf, fallback: current }),
    );
    const rows = names.map(
      (server): SummaryRow =>
        result.rows.find((r) => r.server === server) ?? {
          server,
          result: "deployed",
          release: targetOf(server),
          note: "already on it",
        },
    );
    for (const row of rows) if (row.result === "deployed") row.result = "rolled back";
    const done = summarize(emit, startedAt, result.outcome, rows, release);
    await record(
      ops,
      result.touched,
      hosts,
      "rollback",
      (h) => ({
        release: targetOf(h.server.name),
        previous: current(h.server.name) ?? null,
        result: rows.find((r) => r.server === h.server.name)?.result,
      }),
      { unlock: holder },
    );
    return done;
  });
}
