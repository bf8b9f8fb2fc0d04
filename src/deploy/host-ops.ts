import os from "node:os";
import type { Artifact } from "../artifact/pack.js";
import type { Config } from "../config/load.js";
import { formatTimeline, type GateResult, runGate } from "../health/gate.js";
import { probeOnce, releaseCheck } from "../health/probe.js";
import * as remote from "../remote/commands.js";
import { type Pm2RestartResult, parsePm2Restart, pm2Restart } from "../remote/pm2-script.js";
import { transferArtifact } from "../transfer/transfer.js";
import type { Emit, Step } from "./events.js";
import type { Host } from "./fleet.js";
import { type Pm2Process, parsePm2List, processProblem } from "./pm2.js";
import { parseInspect, type ServerState } from "./state.js";

/** Appends one line to the host's history.jsonl: what happened, when, and who did it from where. */
export async function recordHistory(
  host: Host,
  event: string,
  details: Record<string, unknown>,
): Promise<void> {
  await host.session.exec(
    remote.appendHistory(host.layout, {
      time: new Date().toISOString(),
      event,
      ...details,
      user: os.userInfo().username,
      from: os.hostname(),
    }),
  );
}

export async function readState(host: Host): Promise<ServerState> {
  return parseInspect(
    await host.session.run(remote.inspect(host.layout), { what: "reading the deploy state" }),
  );
}

export async function pm2Process(host: Host, name: string): Promise<Pm2Process | undefined> {
  const result = await host.session.exec(remote.pm2List());
  return parsePm2List(result.stdout).find((p) => p.name === name);
}

/** Upload, verify, extract, write the PM2 file, install dependencies. Touches nothing that serves traffic. */
export async function stage(
  host: Host,
  artifact: Artifact,
  release: string,
  config: Config,
  emit: Emit,
): Promise<void> {
  const { session, layout: l, server } = host;
  const name = server.name;
  await session.run(remote.prepare(l), { what: "preparing the deploy path" });

  const archive = `${l.incoming}/${release}.tar.gz`;
  // SFTP, else HTTP; resolves once the server has checked the sha256 (a bad file is removed).
  await timed(emit, name, "upload", () =>
    transferArtifact(host, artifact, archive, { ...config.transfer, emit }),
  );
  await timed(emit, name, "extract", async () => {
    await session.run(remote.extract(l, archive, release, artifact.sha256), {
      what: "extracting the release",
    });
  });

  await timed(emit, name, "install", async () => {
    const ecosystem = remote.ecosystemFile({
      name: config.pm2.name,
      script: config.app.start,
      cwd: l.release(release),
      env: { PORT: String(config.app.port), ...server.env, NEXUS_RELEASE: release, NEXUS_SERVER: name },
      killTimeout: config.pm2.killTimeout,
      outFile: `${l.logs}/app-out.log`,
      errorFile: `${l.logs}/app-error.log`,
    });
    await session.run(remote.writePrivateFile(l.ecosystem(release)), {
      stdin: ecosystem,
      what: "writing the PM2 file",
    });
    const out = await session.run(remote.install(l, release), { what: "installing dependencies" });
    if (out.includes("@reused")) return "node_modules reused (package-lock.json unchanged)";
    return undefined;
  });
}

const probeOrigins = new WeakMap<Host, Promise<string>>();

/** After a reconnect: the cached tunnel belonged to the old connection. */
export function forgetHealthOrigin(host: Host): void {
  probeOrigins.delete(host);
}

/** Where to reach the app's health endpoint from here: through the host's SSH connection, or directly. */
export function healthOrigin(host: Host, config: Config): Promise<string> {
  let origin = probeOrigins.get(host);
  if (!origin) {
    const target = host.server.upstream.replace(/:\d+$/, "");
    const port = config.health.port;
    origin =
      config.health.via === "direct"
        ? Promise.resolve(`http://${target.includes(":") ? `[${target}]` : target}:${port}`)
        : host.session
            .tunnel(target.replace(/^\[|\]$/g, ""), port)
            .then((local) => `http://127.0.0.1:${local}`);
    probeOrigins.set(host, origin);
  }
  return origin;
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

export interface ActivationResult {
  gate: GateResult;
  process?: Pm2Process;
}

/**
 * Switches `current` to the release, starts it under PM2 afresh, and runs the health gate:
 * /health must pass N times in a row reporting this release, and PM2 must show a new, online
 * process that did not restart meanwhile.
 */
export async function activate(
  host: Host,
  release: string,
  config: Config,
  emit: Emit,
  signal?: AbortSignal,
): Promise<ActivationResult> {
  const { session, layout: l, server } = host;
  const name = server.name;
  await timed(emit, name, "switch", async () => {
    await session.run(remote.activate(l, release), { what: "switching current" });
  });
  let restart: Pm2RestartResult | undefined;
  await timed(emit, name, "restart", async () => {
    restart = parsePm2Restart(
      await session.run(pm2Restart(config.pm2.name, l.ecosystem(release)), {
        what: "starting the app under PM2",
      }),
    );
    return restart.after ? `pid ${restart.after.pid}` : undefined;
  });
  const started: Pm2Process | undefined = restart?.after
    ? { name: config.pm2.name, ...restart.after }
    : undefined;
  const oldPid = restart?.before?.pid;

  emit({ type: "step", server: name, step: "gate", status: "start" });
  const origin = await healthOrigin(host, config);
  const gate = await runGate({
    passes: config.health.passes,
    intervalMs: config.health.interval,
    deadlineMs: config.health.deadline,
    minUptimeMs: config.health.minUptime,
    signal,
    probe: (startedAt) =>
      probeOnce(
        {
          origin,
          path: config.health.path,
          timeoutMs: config.health.timeout,
          expectRelease: releaseCheck(config.health.checkRelease, release, emit),
        },
        startedAt,
      ),
    verifyProcess: async () => processProblem(await pm2Process(host, config.pm2.name), started, oldPid),
  });
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
    const logs = await session.exec(remote.tailFile(`${l.logs}/app-error.log`));
    emit({
      type: "gate-failed",
      server: name,
      reason: gate.reason ?? "failed",
      timeline: formatTimeline(gate.timeline),
      logs: logs.stdout.split("\n").filter((line) => line.trim() !== ""),
    });
  }
  return { gate, process: started };
}

export async function timed(
  emit: Emit,
  server: string,
  step: Step,
  work: () => Promise<unknown>,
): Promise<void> {
  emit({ type: "step", server, step, status: "start" });
  const started = Date.now();
  try {
    const note = await work();
    emit({
      type: "step",
      server,
      step,
      status: "done",
      ms: Date.now() - started,
      message: typeof note === "string" && note ? note : undefined,
    });
  } catch (error) {
    emit({
      type: "step",
      server,
      step,
      status: "fail",
      ms: Date.now() - started,
      message: (error as Error).message,
    });
    throw error;
  }
}
