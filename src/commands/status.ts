import { stillOpen } from "../balancer/balancer.js";
import type { Config, ServerConfig } from "../config/load.js";
import { withLocks } from "../deploy/engine.js";
import { Fleet } from "../deploy/fleet.js";
import { fleetOps } from "../deploy/fleet-ops.js";
import { checkHealth, probeNow } from "../deploy/health-check.js";
import { recordHistory } from "../deploy/history.js";
import { describeHolder, isLiveHere, isStale, newHolder } from "../deploy/lock.js";
import { PlanError } from "../deploy/plan.js";
import { readState, type ServerState } from "../deploy/state.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";
import type { ProcessInfo } from "../process/process-manager.js";
import { capacityProblem, minInRotation } from "../rollout/capacity.js";

export interface ManualOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  force?: boolean;
}

function serverNamed(config: Config, name: string): ServerConfig {
  const server = config.servers.find((s) => s.name === name);
  if (!server) {
    throw new PlanError(
      `unknown server "${name}" (servers in ${config.file}: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return server;
}

/** `nexus drain <server>`: out of rotation, in-flight requests finished, within the capacity guard. */
export async function drainServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  const server = serverNamed(config, name);
  const { emit } = options;
  const fleet = await Fleet.open(
    config,
    config.servers.map((s) => s.name),
    options,
  );
  try {
    // The server's deploy lock: a drain never interleaves with a deploy's own changes to it.
    return await withLocks(fleet, [fleet.host(name)], newHolder("drain"), emit, 0, () =>
      drainLocked(config, fleet, server, options),
    );
  } finally {
    await fleet.close();
  }
}

async function drainLocked(
  config: Config,
  fleet: Fleet,
  server: ServerConfig,
  options: ManualOptions,
): Promise<number> {
  const { emit } = options;
  const name = server.name;
  {
    const states = await fleet.balancer.state(config.servers);
    const own = states.find((b) => b.server === name);
    if (!own?.present)
      throw new PlanError(
        `${name} (${server.upstream}) is not listed by the balancer on ${fleet.balancer.host}`,
      );
    if (!own.inRotation) {
      emit({ type: "info", server: name, message: "is already drained" });
      return EXIT.ok;
    }
    const problem = await capacityProblem(
      config,
      fleetOps(fleet, config, emit),
      [name],
      minInRotation(config),
    );
    if (problem) {
      if (!options.force) throw new PlanError(`${problem}; pass --force to drain anyway`);
      emit({ type: "warn", message: `${problem}: --force given, draining anyway` });
    }
    emit({ type: "step", server: name, step: "drain", status: "start" });
    const started = Date.now();
    await fleet.balancer.apply({
      drain: [server],
      ...(options.force ? {} : { keepInRotation: { servers: config.servers, min: minInRotation(config) } }),
    });
    const wait = await fleet.balancer.waitDrained(server, config.balancer.drainTimeout);
    await fleet.balancer.settle?.();
    const { drained, detail } = wait;
    if (!drained) emit({ type: "warn", server: name, message: `${stillOpen(wait)} after the drain timeout` });
    emit({
      type: "step",
      server: name,
      step: "drain",
      status: "done",
      ms: Date.now() - started,
      message: drained && detail ? `out of rotation: ${detail}` : "out of rotation",
    });
    await recordHistory(fleet.host(name), "drain", {});
    return EXIT.ok;
  }
}

/** `nexus enable <server>`: back in rotation, only once its health check passes. */
export async function enableServer(config: Config, name: string, options: ManualOptions): Promise<number> {
  const server = serverNamed(config, name);
  const { emit } = options;
  const fleet = await Fleet.open(config, [name], options);
  try {
    return await withLocks(fleet, [fleet.host(name)], newHolder("enable"), emit, 0, () =>
      enableLocked(fleet, server, config, options),
    );
  } finally {
    await fleet.close();
  }
}

async function enableLocked(
  fleet: Fleet,
  server: ServerConfig,
  config: Config,
  options: ManualOptions,
): Promise<number> {
  const { emit } = options;
  const name = server.name;
  {
    const host = fleet.host(name);
    emit({ type: "step", server: name, step: "gate", status: "start" });
    const gate = await checkHealth(host, config);
    if (!gate.ok) {
      emit({ type: "step", server: name, step: "gate", status: "fail", message: gate.reason });
      if (!options.force) {
        emit({
          type: "error",
          server: name,
          message: "not healthy: left out of rotation (pass --force to enable anyway)",
        });
        return EXIT.failed;
      }
    } else emit({ type: "step", server: name, step: "gate", status: "done", ms: gate.ms });
    emit({ type: "step", server: name, step: "enable", status: "start" });
    await fleet.balancer.apply({ enable: [server] });
    await fleet.balancer.settle?.();
    emit({ type: "step", server: name, step: "enable", status: "done", message: "in rotation" });
    await recordHistory(host, "enable", {});
    return EXIT.ok;
  }
}

export interface ServerStatus {
  server: string;
  rotation: string;
  health: string;
  release: string;
  /** Instances running now, and how many the config asks for (undefined for "max"). */
  instances: string;
  process: string;
  lock: string;
}

/** `nexus status`: per server, the balancer's view, health, current release, PM2 and the lock. */
export async function fleetStatus(config: Config, options: ManualOptions): Promise<ServerStatus[]> {
  const fleet = await Fleet.open(
    config,
    config.servers.map((s) => s.name),
    // One server down is what status is for: it gets a row saying so, the others theirs.
    { ...options, quiet: true, skipUnreachable: true },
  );
  try {
    const backends = await fleet.balancer.state(config.servers);
    return await Promise.all(
      config.servers.map(async (s): Promise<ServerStatus> => {
        const backend = backends.find((b) => b.server === s.name);
        const rotation = !backend?.present ? "not listed" : backend.inRotation ? "in rotation" : "drained";
        if (fleet.unreachable.has(s.name))
          return {
            server: s.name,
            rotation,
            health: "not reached over SSH (see above)",
            release: "-",
            instances: "-",
            process: "-",
            lock: "-",
          };
        const host = fleet.host(s.name);
        const [state, instances, probe] = await Promise.all([
          readState(host),
          fleet.processes.inspect(host.session),
          probeNow(host, config),
        ]);
        return {
          server: s.name,
          rotation,
          health: probe.ok ? `ok (${probe.latencyMs}ms)` : `FAIL ${probe.error ?? ""}`.trim(),
          release: state.current ?? "-",
          instances: describeCount(instances, fleet.processes.instances),
          process: describeInstances(instances),
          lock: lockColumn(state),
        };
      }),
    );
  } finally {
    await fleet.close();
  }
}

/**
 * A journal is there while a command changes the server, and stays if it was killed: it means
 * "interrupted" only when its command's lock is gone or stale. A lock from another machine
 * cannot be checked from here: the command may be running (a CI job), so it is said as such.
 */
export function lockColumn(state: Pick<ServerState, "journal" | "lock">): string {
  const { journal, lock } = state;
  if (journal && (!lock || isStale(lock)))
    return `INTERRUPTED ${journal.command} of ${journal.release}: run nexus recover`;
  if (journal && lock)
    return `${journal.command} of ${journal.release} under way: ${describeHolder(lock)}${isLiveHere(lock) ? "" : " (if that command is dead: nexus recover --force)"}`;
  return lock ? describeHolder(lock) : "-";
}

function describeCount(instances: ProcessInfo[], expected: number | undefined): string {
  const online = instances.filter((p) => p.status === "online").length;
  const of = expected === undefined ? instances.length : expected;
  return `${online}/${of} online`;
}

function describeInstances(instances: ProcessInfo[]): string {
  if (instances.length === 0) return "not running";
  return instances
    .map(
      (p) =>
        `${p.status} pid ${p.pid}, ${p.restarts} restart(s)${p.startedAt ? `, up ${formatUptime(Date.now() - p.startedAt)}` : ""}`,
    )
    .join("; ");
}

function formatUptime(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
