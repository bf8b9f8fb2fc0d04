import type { Config, ServerConfig } from "../config/load.js";
import { UsageError } from "../errors.js";
import { minInRotation, noCapacity } from "../rollout/capacity.js";

export interface Plan {
  release: string;
  servers: ServerConfig[];
  batches: ServerConfig[][];
  /** The first batch is a canary. */
  canary: boolean;
  /** Servers that must stay in rotation while a batch is out. */
  minInRotation: number;
}

/** Resolves a batch size ("25%" or a count) against the fleet size: at least 1, at most fleet - 1 when possible. */
export function batchCount(batchSize: number | string, fleet: number): number {
  const raw =
    typeof batchSize === "number"
      ? batchSize
      : Math.floor((fleet * Number.parseInt(batchSize, 10)) / 100) || 1;
  return Math.max(1, Math.min(raw, fleet));
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Picks the servers (all, or --only) in config order, split into batches. */
export function makePlan(config: Config, release: string, only?: readonly string[]): Plan {
  let servers = config.servers;
  if (only && only.length > 0) {
    const unknown = only.filter((name) => !config.servers.some((s) => s.name === name));
    if (unknown.length > 0)
      throw new PlanError(
        `--only: unknown server ${unknown.map((n) => `"${n}"`).join(", ")} (valid: ${config.servers.map((s) => s.name).join(", ")})`,
      );
    servers = config.servers.filter((s) => only.includes(s.name));
  }
  const size = batchCount(config.rolling.batchSize, config.servers.length);
  const canary = Math.min(config.rolling.canary, servers.length);
  const batches = [...chunk(servers.slice(0, canary), canary), ...chunk(servers.slice(canary), size)];
  const floor = minInRotation(config);
  // The surge strategy never takes a server out of rotation: no batch size can break the floor.
  if (
    config.rolling.strategy !== "surge" &&
    config.servers.length - Math.max(...batches.map((b) => b.length)) < floor
  ) {
    throw new PlanError(
      `rolling.batchSize: batches of ${Math.max(...batches.map((b) => b.length))} cannot keep ${floor} of ${config.servers.length} server(s) in rotation (rolling.minInRotation)`,
    );
  }
  return { release, servers, batches, canary: canary > 0, minInRotation: floor };
}

/** A plan that cannot be carried out as asked (--only, --release-id, batch sizes): exit 2. */
export { noCapacity };

export class PlanError extends UsageError {}

export function describePlan(config: Config, plan: Plan): string[] {
  const lines = [
    `release ${plan.release} to ${plan.servers.length} of ${config.servers.length} server(s), ${plan.batches.length} batch(es)`,
    `1. pack ${config.app.root}`,
    `2. stage on ${plan.servers.map((s) => s.name).join(", ")} (upload, extract, ${config.shared.files.length + config.shared.dirs.length > 0 ? "link shared files, " : ""}install; nothing leaves rotation)`,
  ];
  if (config.hooks.beforeRoll) {
    lines.push(
      `   then hooks.beforeRoll once on ${config.hooks.beforeRollOn ?? plan.servers[0]?.name}, before any drain: ${config.hooks.beforeRoll}`,
    );
  }
  plan.batches.forEach((batch, index) => {
    const names = batch.map((s) => s.name).join(", ");
    const label = plan.canary && index === 0 ? "canary batch" : `batch ${index + 1}`;
    const pause =
      index > 0 && config.rolling.pause > 0 ? `after a ${config.rolling.pause / 1000}s pause, ` : "";
    const afterStart = config.hooks.afterStart ? "hooks.afterStart; " : "";
    const { watch } = config.rolling;
    const window = index === 0 ? (watch.canary ?? watch.duration) : watch.duration;
    const watching = watch.duration > 0 ? `; watch ${window / 1000}s` : "";
    if (config.rolling.strategy === "surge") {
      lines.push(
        `${index + 3}. ${label}: ${pause}start the release beside the serving process on ${names} (the other of ports ${config.app.port} and ${config.app.surgePort}); ${afterStart}health gate on that port; switch the balancer to it; drain and stop the old process${watching}`,
      );
      return;
    }
    lines.push(
      `${index + 3}. ${label}: ${pause}drain ${names}; switch; restart; ${afterStart}health gate; enable${watching}`,
    );
    const empty = noCapacity(config, batch);
    if (empty) lines.push(`   ${empty}`);
  });
  lines.push(
    config.rolling.strategy === "surge"
      ? "capacity: no server leaves rotation (strategy surge)"
      : `capacity guard: at least ${plan.minInRotation} other server(s) in rotation and healthy while a batch is out`,
  );
  if (config.rolling.watch.duration > 0) {
    const { watch } = config.rolling;
    lines.push(
      `watch: errors${watch.latency ? " and latency" : ""} at the balancer against the untouched servers; inconclusive after ${(watch.maxDuration ?? 2 * watch.duration) / 1000}s: ${watch.inconclusive}`,
    );
  }
  lines.push(
    `on a failed gate: ${config.rolling.onFailure === "rollback-all" ? "restore the previous release on that batch and every server already done" : "restore the previous release on that batch, halt"}`,
  );
  return lines;
}
