import type { Config } from "../config/load.js";
import { probeOnce } from "../health/probe.js";
import type { Fleet } from "./fleet.js";
import { healthOrigin } from "./host-ops.js";

/** While servers are out, at least this many others must be in rotation and healthy. */
export function minInRotation(config: Config): number {
  return config.rolling.minInRotation ?? (config.servers.length > 1 ? 1 : 0);
}

async function healthyNow(config: Config, fleet: Fleet, name: string): Promise<boolean> {
  const host = fleet.hosts.get(name);
  if (!host) return false; // unreachable (--skip-unreachable): it cannot count as capacity
  const origin = await healthOrigin(host, config);
  return (await probeOnce({ origin, path: config.health.path, timeoutMs: config.health.timeout }, Date.now()))
    .ok;
}

/**
 * The capacity guard, checked live: draining `names` is refused unless at least `floor` other
 * servers are in rotation and answer /health right now. Draining servers that serve nothing
 * (a first deploy, a dead app) takes no capacity away, so it is always allowed.
 */
export async function capacityProblem(
  config: Config,
  fleet: Fleet,
  names: readonly string[],
  floor: number,
): Promise<string | undefined> {
  if (floor <= 0) return undefined;
  const states = await fleet.balancer.state(config.servers);
  const leaving = states.filter((b) => b.inRotation && names.includes(b.server));
  const staying = states.filter((b) => b.inRotation && !names.includes(b.server));
  const [leavingHealth, stayingHealth] = await Promise.all([
    Promise.all(leaving.map((b) => healthyNow(config, fleet, b.server))),
    Promise.all(staying.map((b) => healthyNow(config, fleet, b.server))),
  ]);
  if (!leavingHealth.some(Boolean)) return undefined;
  const healthy = stayingHealth.filter(Boolean).length;
  if (healthy >= floor) return undefined;
  return `draining ${names.join(", ")} would leave ${healthy} healthy server(s) in rotation (minimum ${floor})`;
}
