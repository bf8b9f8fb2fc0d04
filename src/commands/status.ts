import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { printTable } from "../cli/table.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config } from "../config/load.js";
import { allServers, withFleet } from "../deploy/fleet.js";
import { probeNow, servingPort } from "../deploy/health-check.js";
import { describeHolder, isLiveHere, isStale } from "../deploy/lock.js";
import { readState, type ServerState } from "../deploy/state.js";
import { processSlot } from "../deploy/surge-ops.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";
import type { ProcessInfo } from "../process/process-manager.js";

/** `nexus status`: one row per server; exit 1 unless every server is in rotation and healthy. */
export function statusCommand(setExit: SetExit): Command {
  return new Command("status")
    .description("per server: in rotation or drained, health, current release, PM2 process, lock")
    .addHelpText("after", examples("nexus status --json"))
    .action(
      action(setExit, async ({ reporter, global }) => {
        const config = readConfig(global);
        const rows = await fleetStatus(config, { emit: (e) => reporter.emit(e), ...global });
        const { destination } = config;
        if (global.json) printResult({ command: "status", ...(destination ? { destination } : {}), rows });
        else {
          if (destination)
            reporter.emit({
              type: "info",
              message: `destination ${destination} (${config.files.join(" + ")})`,
            });
          printTable(
            reporter,
            ["server", "rotation", "port", "health", "release", "process", "instances", "lock"],
            rows.map((r) => [
              r.server,
              r.rotation,
              r.port,
              r.health,
              r.release,
              r.process,
              r.instances,
              r.lock,
            ]),
          );
        }
        return rows.every((r) => r.rotation === "in rotation" && r.health.startsWith("ok"))
          ? EXIT.ok
          : EXIT.failed;
      }),
    );
}

export interface ServerStatus {
  server: string;
  rotation: string;
  /**
   * The app's port that serves: app.port, or the surge strategy's live port (its other process
   * may be starting or draining); the balancer's own address for the server when it says another.
   */
  port: string;
  health: string;
  release: string;
  /** Instances running now, and how many the config asks for (undefined for "max"). */
  instances: string;
  process: string;
  lock: string;
}

/** `nexus status`: per server, the balancer's view, health, current release, PM2 and the lock. */
export async function fleetStatus(
  config: Config,
  options: { emit: Emit; acceptNew?: boolean; verbose?: boolean },
): Promise<ServerStatus[]> {
  // One server down is what status is for: it gets a row saying so, the others theirs.
  const fleetOptions = { ...options, quiet: true, skipUnreachable: true };
  return withFleet(config, allServers(config), fleetOptions, async (fleet) => {
    // One round of parallel work: the balancer and every server are asked at the same time.
    const backendsRead = fleet.balancer.state(config.servers);
    backendsRead.catch(() => {});
    const backendOf = async (name: string) => (await backendsRead).find((b) => b.server === name);
    const rotationOf = (backend: Awaited<ReturnType<typeof backendOf>>) =>
      !backend?.present ? "not listed" : backend.inRotation ? "in rotation" : "drained";
    return await Promise.all(
      config.servers.map(async (s): Promise<ServerStatus> => {
        if (fleet.unreachable.has(s.name)) {
          const backend = await backendOf(s.name);
          return {
            server: s.name,
            rotation: rotationOf(backend),
            port: backend?.address?.replace(/^.*:/, "") ?? "-",
            health: "not reached over SSH (see above)",
            release: "-",
            instances: "-",
            process: "-",
            lock: "-",
          };
        }
        const host = fleet.host(s.name);
        const state = await readState(host);
        const [instances, probe] = await Promise.all([
          fleet.processes.inspect(host.session, processSlot(config, state.livePort)),
          probeNow(host, config, servingPort(config, state.livePort)),
        ]);
        const backend = await backendOf(s.name);
        const live = String(state.livePort ?? config.app.port);
        const balancerPort = backend?.address?.replace(/^.*:/, "");
        return {
          server: s.name,
          rotation: rotationOf(backend),
          port: balancerPort && balancerPort !== live ? `${live} (balancer: ${balancerPort})` : live,
          health: probe.ok ? `ok (${probe.latencyMs}ms)` : `FAIL ${probe.error ?? ""}`.trim(),
          release: state.current ?? "-",
          instances: describeCount(instances, fleet.processes.instances),
          process: describeInstances(instances),
          lock: lockColumn(state),
        };
      }),
    );
  });
}

/**
 * A journal is there while a command changes the server, and stays if it was killed: it means
 * "interrupted" only when its command's lock is gone or stale. A lock from another machine
 * cannot be checked from here: the command may be running (a CI job), so it is said as such.
 */
export function lockColumn(state: Pick<ServerState, "journal" | "lock">): string {
  const { journal, lock } = state;
  if (journal && (!lock || isStale(lock)))
    return `INTERRUPTED ${journal.command} of ${journal.release}: run ${nexusCommand("recover")}`;
  if (journal && lock)
    return `${journal.command} of ${journal.release} under way: ${describeHolder(lock)}${isLiveHere(lock) ? "" : ` (if that command is dead: ${nexusCommand("recover", "--force")})`}`;
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
