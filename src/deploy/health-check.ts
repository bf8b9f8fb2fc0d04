import type { Config } from "../config/load.js";
import { type GateResult, runGate } from "../health/gate.js";
import { type ProbeResult, probeOnce } from "../health/probe.js";
import type { Host } from "./fleet.js";

const probeOrigins = new WeakMap<Host, Map<number, Promise<string>>>();

/** After a reconnect: the cached tunnel belonged to the old connection. */
export function forgetHealthOrigin(host: Host): void {
  probeOrigins.delete(host);
}

/**
 * Where to reach the app's health endpoint from here: through the host's SSH connection, or
 * directly. `port`: another port than health.port (the surge strategy's new process).
 */
export function healthOrigin(host: Host, config: Config, port = config.health.port): Promise<string> {
  let origins = probeOrigins.get(host);
  if (!origins) {
    origins = new Map();
    probeOrigins.set(host, origins);
  }
  let origin = origins.get(port);
  if (!origin) {
    const target = host.server.upstream.replace(/:\d+$/, "");
    origin =
      config.health.via === "direct"
        ? Promise.resolve(`http://${target.includes(":") ? `[${target}]` : target}:${port}`)
        : host.session
            .tunnel(target.replace(/^\[|\]$/g, ""), port)
            .then((local) => `http://127.0.0.1:${local}`);
    origins.set(port, origin);
  }
  return origin;
}

/** One probe of the health endpoint, now (any release); `port`: as for healthOrigin. */
export async function probeNow(host: Host, config: Config, port?: number): Promise<ProbeResult> {
  const origin = await healthOrigin(host, config, port);
  return probeOnce({ origin, path: config.health.path, timeoutMs: config.health.timeout }, Date.now());
}

/** The health endpoint passes `health.passes` times in a row (any release), within a short deadline. */
export async function checkHealth(host: Host, config: Config, deadlineCapMs = 15_000): Promise<GateResult> {
  const origin = await healthOrigin(host, config);
  return runGate({
    passes: config.health.passes,
    intervalMs: config.health.interval,
    deadlineMs: Math.min(config.health.deadline, deadlineCapMs),
    probe: (startedAt) =>
      probeOnce({ origin, path: config.health.path, timeoutMs: config.health.timeout }, startedAt),
  });
}
