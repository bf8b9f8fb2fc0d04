import type { BackendState } from "../balancer/balancer.js";
import type { Config } from "../config/load.js";
import type { FleetOps } from "./fleet-ops.js";

/** While servers are out, at least this many others must be in rotation and healthy. */
export function minInRotation(config: Config): number {
  return config.rolling.minInRotation ?? (config.servers.length > 1 ? 1 : 0);
}

/**
 * The capacity guard, checked live: draining `names` is refused unless at least `floor` other
 * servers are in rotation (or `joining` it in the same change) and answer /health right now.
 * Draining servers that serve nothing (a first deploy, a dead app) takes no capacity away.
 */
export async function capacityProblem(
  config: Config,
  ops: Pick<FleetOps, "balancer" | "healthy">,
  names: readonly string[],
  floor: number,
  joining: readonly string[] = [],
  /** The balancer's state if it was just read (the roll's first batch): one round trip less. */
  fresh?: readonly BackendState[],
): Promise<string | undefined> {
  if (floor <= 0) return undefined;
  const states = fresh ?? (await ops.balancer.state(config.servers));
  const serving = states.filter((b) => b.inRotation || (b.present && joining.includes(b.server)));
  const leaving = serving.filter((b) => names.includes(b.server));
  const staying = serving.filter((b) => !names.includes(b.server));
  const [leavingHealth, stayingHealth] = await Promise.all([
    Promise.all(leaving.map((b) => ops.healthy(b.server))),
    Promise.all(staying.map((b) => ops.healthy(b.server))),
  ]);
  if (!leavingHealth.some(Boolean)) return undefined;
  const healthy = stayingHealth.filter(Boolean).length;
  if (healthy >= floor) return undefined;
  return `draining ${names.join(", ")} would leave ${healthy} healthy server(s) in rotation (minimum ${floor})`;
}

/**
 * A drain batch that takes every server of the fleet out of rotation at once (a fleet of one, or a
 * batch as large as the fleet): requests fail until its gate passes. Said in the plan and warned
 * about before the batch starts; undefined when others stay in rotation.
 */
export function noCapacity(config: Config, batch: readonly { name: string }[]): string | undefined {
  const staying = config.servers.filter((s) => !batch.some((b) => b.name === s.name));
  if (config.rolling.strategy === "surge" || staying.length > 0) return undefined;
  return `warning: this batch (${batch.map((s) => s.name).join(", ")}) leaves no server in rotation: the balancer has nowhere to send requests until its gate passes (rolling.strategy "surge" keeps serving)`;
}
