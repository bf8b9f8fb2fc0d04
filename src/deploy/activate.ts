import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { formatTimeline, type GateResult, runGate } from "../health/gate.js";
import { probeOnce, releaseCheck } from "../health/probe.js";
import { ProbeAgents } from "../health/probe-agent.js";
import {
  crashProblem,
  type PreparedRestart,
  type ProcessInfo,
  type ProcessManager,
  processProblem,
  uptimeAtStart,
} from "../process/process-manager.js";
import { runOp } from "../remote/op.js";
import { activate as switchCurrent, tailFile } from "../remote/release.js";
import { redactedLogLines } from "../report/redact.js";
import type { Host } from "./fleet.js";
import { healthEndpoint } from "./health-check.js";
import { runServerHook } from "./hooks.js";
import { releaseEnv } from "./release-env.js";
import { timed } from "./timed.js";

export interface ActivationResult {
  gate: GateResult;
  started: ProcessInfo[];
}

/**
 * Switches `current` to the release, starts it afresh under the process manager, and runs the
 * health gate: /health must pass N times in a row (reporting this release when it reports one),
 * and every instance must be new, online and not restarting. `prepared`: the restart readied before
 * the server was drained (`ProcessManager.prepareRestart`), for this release.
 */
export async function activate(
  host: Host,
  release: string,
  config: Config,
  processes: ProcessManager,
  emit: Emit,
  signal?: AbortSignal,
  prepared?: PreparedRestart,
  /**
   * The surge strategy: the release starts beside the one serving, listening on `port`, as the
   * process manager's process `slot` (undefined: the app's own process), and is probed there.
   */
  surge?: { port: number; slot: number | undefined },
): Promise<ActivationResult> {
  const { session, layout: l, server } = host;
  const name = server.name;
  await timed(emit, name, "switch", () => runOp(session, switchCurrent(l, release)));
  const restarted = await restart(host, release, processes, emit, prepared, surge);
  const { started } = restarted;

  emit({ type: "step", server: name, step: "gate", status: "start" });
  // afterStart (a cache warm-up): part of the gate, so a failure fails this server's gate.
  const hook = await runServerHook(host, "afterStart", config, {
    cwd: l.app(release),
    env: releaseEnv(config, server, release),
    emit,
    signal,
  });
  if (!hook.ok) {
    const reason = `hooks.afterStart failed: ${hook.reason ?? "failed"}`;
    emit({ type: "step", server: name, step: "gate", status: "fail", ms: 0, message: reason });
    emit({ type: "gate-failed", server: name, reason, timeline: [], logs: [] });
    return { gate: { ok: false, reason, timeline: [], ms: 0 }, started };
  }
  const gate = await healthGate(host, release, config, processes, restarted, emit, signal, prepared, surge);
  if (gate.ok) {
    emit({
      type: "step",
      server: name,
      step: "gate",
      status: "done",
      ms: gate.ms,
      message: `${gate.timeline.length} probe(s)`,
    });
  } else {
    emit({ type: "step", server: name, step: "gate", status: "fail", ms: gate.ms, message: gate.reason });
    const lines = await runOp(session, tailFile(processes.logFiles(l).error)).catch(() => []);
    emit({
      type: "gate-failed",
      server: name,
      reason: gate.reason ?? "failed",
      timeline: formatTimeline(gate.timeline),
      logs: redactedLogLines(config, lines.join("\n")),
    });
  }
  return { gate, started };
}

/** The instances a restart started, the pids of those it stopped, and how long the new ones had been up. */
interface Restarted {
  started: ProcessInfo[];
  oldPids: number[];
  upAlready: number;
}

/** The app's old instances stopped and the release started: through the prepared restart when there is one. */
async function restart(
  host: Host,
  release: string,
  processes: ProcessManager,
  emit: Emit,
  prepared?: PreparedRestart,
  surge?: { port: number; slot: number | undefined },
): Promise<Restarted> {
  const restarted: Restarted = { started: [], oldPids: [], upAlready: 0 };
  await timed(emit, host.server.name, "restart", async () => {
    const result = prepared
      ? await prepared.go()
      : await processes.restart(host.session, host.layout, release, surge?.slot);
    restarted.started = result.after;
    restarted.oldPids = result.before.map((p) => p.pid).filter((pid) => pid > 0);
    restarted.upAlready = uptimeAtStart(result);
    const on = surge === undefined ? "" : ` on port ${surge.port}`;
    return result.after.length > 0 ? `pid ${result.after.map((p) => p.pid).join(", ")}${on}` : undefined;
  });
  return restarted;
}

/**
 * /health passes `health.passes` times in a row (reporting this release when it reports one), and
 * every instance is new, online and not restarting, for at least `health.minUptime`.
 */
async function healthGate(
  host: Host,
  release: string,
  config: Config,
  processes: ProcessManager,
  restarted: Restarted,
  emit: Emit,
  signal?: AbortSignal,
  prepared?: PreparedRestart,
  surge?: { port: number; slot: number | undefined },
): Promise<GateResult> {
  // Made now that the restart has returned, destroyed when the gate ends: no kept connection
  // can reach a process the restart replaced (probe-agent.ts).
  const agents = new ProbeAgents(
    healthEndpoint(host, config, "health gate", surge?.port),
    restarted.started.length,
  );
  const slot = surge?.slot;
  const inspect = () =>
    prepared?.inspect().catch(() => processes.inspect(host.session, slot)) ??
    processes.inspect(host.session, slot);
  const expectRelease = releaseCheck(config.health.checkRelease, release, emit);
  return runGate({
    passes: config.health.passes,
    intervalMs: config.health.interval,
    deadlineMs: config.health.deadline,
    startTimeoutMs: config.health.startTimeout,
    // Uptime counts from the process's start (PM2's), part of which the restart step already saw.
    minUptimeMs: Math.max(0, config.health.minUptime - restarted.upAlready),
    signal,
    probe: (startedAt) =>
      probeOnce(
        { agent: agents.next(), path: config.health.path, timeoutMs: config.health.timeout, expectRelease },
        startedAt,
      ),
    crashed: async () => crashProblem(await inspect(), restarted.started, restarted.oldPids),
    verifyProcess: async () =>
      processProblem(await inspect(), restarted.started, restarted.oldPids, processes.instances),
  }).finally(() => agents.destroy());
}
