import { type Config, requireSecrets } from "../config/load.js";
import type { SummaryRow } from "../events/events.js";
import { runOp } from "../remote/op.js";
import { keepPrivateFile, restorePrivateFile } from "../remote/release.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
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
import type { Fleet, Host } from "./fleet.js";
import { fleetOps } from "./fleet-ops.js";
import { newHolder } from "./lock.js";
import { makePlan, PlanError } from "./plan.js";
import { releaseEnv } from "./release-env.js";
import type { ServerState } from "./state.js";

export type RestartOptions = RollCommandOptions;

/**
 * `nexus restart`: the current release of each server restarted with the same drain and gate as
 * a deploy, nothing transferred. Its process file is written again from the config first (so an
 * env change takes effect); if the gate fails, the server goes back to the process file it had.
 */
export async function restart(config: Config, options: RestartOptions): Promise<CommandResult> {
  const { emit } = options;
  const startedAt = Date.now();
  const plan = makePlan(config, "current", options.only);
  const names = plan.servers.map((s) => s.name);
  requireSecrets(config, "restart writes it into the app's environment", names);
  // The process files are written from app.start: a command nexus cannot run stops here (exit 2).
  startOf(config);
  const holder = newHolder("restart", undefined, config.destination);
  return withPlannedFleet(config, plan, holder, options, async ({ fleet, hosts, states }) => {
    const current = new Map<string, string>();
    const problems: string[] = [];
    for (const h of hosts) {
      const state = states.get(h.server.name) as ServerState;
      if (state.current) current.set(h.server.name, state.current);
      else problems.push(`${h.server.name}: no current release (deploy first)`);
    }
    if (problems.length > 0) throw new PlanError(`cannot restart:\n  ${problems.join("\n  ")}`);
    const release = [...new Set(current.values())].join(", ");
    const { destination } = config;
    emit({
      type: "begin",
      command: "restart",
      release,
      ...(destination ? { destination } : {}),
      servers: names,
    });
    const releaseOf = (name: string) => current.get(name) as string;
    const ops = withFreshProcessFiles(fleetOps(fleet, config, emit, states), fleet, config, releaseOf);

    const result = await rollJournaled(
      hosts,
      (h) => ({
        command: "restart",
        release: releaseOf(h.server.name),
        previous: releaseOf(h.server.name),
      }),
      rollOptions(config, plan, ops, options, {
        batches: plan.batches,
        canary: plan.canary,
        target: releaseOf,
        fallback: releaseOf,
      }),
    );
    const rows = result.rows.map(
      (row): SummaryRow => (row.result === "deployed" ? { ...row, note: row.note ?? "restarted" } : row),
    );
    const done = summarize(emit, startedAt, result.outcome, rows, release);
    await record(
      ops,
      result.touched,
      hosts,
      "restart",
      (h: Host) => ({
        release: releaseOf(h.server.name),
        result: rows.find((r) => r.server === h.server.name)?.result,
      }),
      { unlock: holder },
    );
    return done;
  });
}

/**
 * The first activation of a server writes its process file from the config; any later one (a
 * restore after a failed gate, or rollback-all) puts back the file it had before.
 */
function withFreshProcessFiles(
  ops: FleetOps,
  fleet: Fleet,
  config: Config,
  releaseOf: (server: string) => string,
): FleetOps {
  const kept = new Map<string, boolean>();
  return {
    ...ops,
    async activate(server, release, signal) {
      const host = fleet.host(server.name);
      const file = fleet.processes.processFile(host.layout, {
        release,
        cwd: host.layout.app(release),
        env: releaseEnv(config, server, releaseOf(server.name)),
      });
      if (!kept.has(server.name)) {
        kept.set(
          server.name,
          await runOp(host.session, keepPrivateFile(file.path, "keeping the process file")),
        );
        await runOp(host.session, file.write);
      } else if (kept.get(server.name)) {
        await runOp(host.session, restorePrivateFile(file.path, "restoring the process file"));
      }
      return ops.activate(server, release, signal);
    },
  };
}
