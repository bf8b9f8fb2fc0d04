import type { Config } from "../config/load.js";
import { type GateResult, runGate } from "../health/gate.js";
import { type ProbeResult, probeOnce } from "../health/probe.js";
import { ProbeAgent, type ProbeEndpoint } from "../health/probe-agent.js";
import { readLivePort } from "../remote/live-port.js";
import { runOp } from "../remote/op.js";
import type { Host } from "./fleet.js";

/**
 * The port of the process that serves on a server: the one the surge strategy recorded
 * (`.nexus/live-port`: app.surgePort after an odd number of surges), else health.port.
 */
export function servingPort(config: Config, livePort: number | undefined): number {
  return livePort === undefined || livePort === config.app.port ? config.health.port : livePort;
}

/** servingPort, read from the server (one exchange). */
export async function readServingPort(host: Host, config: Config): Promise<number> {
  return servingPort(config, await runOp(host.session, readLivePort(host.layout)));
}

/**
 * Where the app's health endpoint is and how to reach it: through the host's SSH connection (a
 * forwarded connection opened by the server), or directly. `port`: another port than health.port
 * (the surge strategy's new process). `what`: who probes, for the SSH trace ("health gate").
 */
export function healthEndpoint(
  host: Host,
  config: Config,
  what: string,
  port = config.health.port,
): ProbeEndpoint {
  const address = host.server.upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  if (config.health.via === "direct") return { host: address, port };
  const session = host.session;
  return { host: address, port, open: () => session.forwardSocket(address, port, what) };
}

/** One probe of the health endpoint, now (any release), on a connection of its own; `port`: as for healthEndpoint. */
export async function probeNow(host: Host, config: Config, port?: number): Promise<ProbeResult> {
  const agent = new ProbeAgent(healthEndpoint(host, config, "health probe", port));
  try {
    return await probeOnce({ agent, path: config.health.path, timeoutMs: config.health.timeout }, Date.now());
  } finally {
    agent.destroy();
  }
}

/**
 * The health endpoint passes `health.passes` times in a row (any release), within a short
 * deadline; the probes share one kept connection. `port`: as for healthEndpoint.
 */
export async function checkHealth(
  host: Host,
  config: Config,
  port?: number,
  deadlineCapMs = 15_000,
): Promise<GateResult> {
  const agent = new ProbeAgent(healthEndpoint(host, config, "health check", port));
  try {
    return await runGate({
      passes: config.health.passes,
      intervalMs: config.health.interval,
      deadlineMs: Math.min(config.health.deadline, deadlineCapMs),
      probe: (startedAt) =>
        probeOnce({ agent, path: config.health.path, timeoutMs: config.health.timeout }, startedAt),
    });
  } finally {
    agent.destroy();
  }
}
