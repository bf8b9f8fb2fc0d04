// Runs the built CLI with --json and turns its events into timings.
import { spawn } from "node:child_process";
import path from "node:path";
import { performance } from "node:perf_hooks";

const now = () => performance.timeOrigin + performance.now();

/**
 * `node bundle/nexus.mjs --json …` (what the npm package's `nexus` and the Action run; the
 * compiled sources under dist/ start ~0.3 s slower, importing ~140 files): resolves with the exit
 * code, the parsed events (one JSON object per stdout line, each with an ISO `time`), and when the
 * process was spawned and exited.
 */
export function runNexus(root, args, timeoutMs = 240_000, env = {}) {
  return new Promise((resolve, reject) => {
    const spawnedAt = now();
    const child = spawn(process.execPath, [path.join(root, "bundle", "nexus.mjs"), "--json", ...args], {
      cwd: root,
      env: { ...process.env, CI: "true", NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const exitedAt = now();
      const events = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => {
          const event = JSON.parse(line);
          return { ...event, t: Date.parse(event.time) };
        });
      resolve({ args, code: code ?? -1, spawnedAt, exitedAt, events, stderr });
    });
  });
}

/** Throws with the CLI's own words unless it exited 0. */
export function expectSuccess(run) {
  if (run.code === 0) return run;
  const errors = run.events
    .filter((e) => e.type === "error" || e.type === "warn" || e.type === "output")
    .map((e) => `  ${e.server ? `${e.server}: ` : ""}${e.message ?? e.line}`);
  throw new Error(`nexus ${run.args.join(" ")} exited ${run.code}\n${errors.join("\n")}\n${run.stderr}`);
}

/**
 * Where the time of one command went: the segments of the whole command, and for each server
 * its steps and its time out of rotation (nexus's own figure, from the summary).
 */
export function analyze(run) {
  const { events } = run;
  const first = events[0]?.t ?? run.spawnedAt;
  const phase = (name) => events.find((e) => e.type === "phase" && e.phase === name)?.t;
  const summary = events.find((e) => e.type === "summary");
  const steps = events.filter((e) => e.type === "step");
  const enableDone = steps.filter((e) => e.step === "enable" && e.status === "done").map((e) => e.t);
  const stage = phase("stage");
  const roll = phase("roll");
  const rollEnd = enableDone.length ? Math.max(...enableDone) : undefined;
  const end = summary?.t ?? run.exitedAt;
  const segments = {
    startup: first - run.spawnedAt,
    preflight: (stage ?? roll ?? end) - first,
    stage: stage !== undefined && roll !== undefined ? roll - stage : Number.NaN,
    roll: roll !== undefined && rollEnd !== undefined ? rollEnd - roll : 0,
    finish: end - (rollEnd ?? roll ?? end),
    exit: run.exitedAt - end,
  };
  const servers = [...new Set(steps.map((e) => e.server))].map((server) => {
    const of = (step, status) =>
      steps.find((e) => e.server === server && e.step === step && e.status === status);
    const drainStart = of("drain", "start");
    const drainDone = of("drain", "done");
    const gateDone = of("gate", "done");
    const enableStart = of("enable", "start");
    const enableDone = of("enable", "done");
    return {
      server,
      outOfRotation: summary?.rows.find((r) => r.server === server)?.outOfRotation,
      gateProbes: Number(/(\d+) probe/.exec(gateDone?.message ?? "")?.[1] ?? Number.NaN),
      // Nginx's drain line: how long its in-flight requests took, and the retired workers (if longer).
      drainWait: drainWait(drainDone?.message),
      drainStart: drainStart?.t,
      drainDone: drainDone?.t,
      enableStart: enableStart?.t,
      enableDone: enableDone?.t,
      ms: {
        drain: drainDone?.ms,
        switch: of("switch", "done")?.ms,
        restart: of("restart", "done")?.ms,
        gate: gateDone?.ms,
        // Between a passed gate and the enable: `pm2 save` on the server.
        afterGate: gateDone && enableStart ? enableStart.t - gateDone.t : undefined,
        enable: enableDone?.ms,
      },
    };
  });
  return {
    wall: (run.exitedAt - run.spawnedAt) / 1000,
    reported: summary?.seconds,
    release: summary?.release,
    start: run.spawnedAt,
    end: run.exitedAt,
    segments,
    servers: servers.filter((s) => s.drainStart !== undefined),
  };
}

/** "in-flight requests done in 0.12s, the Nginx workers retired by the reload gone in 0.62s" → ms. */
function drainWait(message = "") {
  const inFlight = /in-flight requests done in ([\d.]+)s/.exec(message);
  if (!inFlight) return undefined;
  const retired = /retired by the reload gone in ([\d.]+)s/.exec(message);
  const inFlightMs = Number(inFlight[1]) * 1000;
  return { inFlightMs, retiredMs: retired ? Number(retired[1]) * 1000 : inFlightMs };
}
