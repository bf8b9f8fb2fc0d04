#!/usr/bin/env node
// npm run bench: measures nexus on a sandbox of its own (.sandbox-bench, 127.0.9.x, loopback only)
// and writes docs/benchmarks.md and docs/benchmark-timeline.svg.
//
//   1. 3 servers, under a steady 160 req/s load through Nginx: `nexus deploy --rolling` then
//      `nexus rollback`, and right after, in the same iteration, the naive restart of the same
//      release (switch + PM2 restart, no drain). BENCH_RUNS iterations (default 3).
//   2. How a deploy's total time grows with 3, 6 and 12 servers (BENCH_SIZES), at batch size 1
//      and 25%, with no load, on one sandbox of the largest size, deploying to its first N
//      servers. 3 runs for 3 servers, BENCH_SCALE_RUNS (default 2) for more; fewer runs, or fewer
//      sizes (reported as skipped), when the time budget (BENCH_BUDGET, default 345 s) would not hold.
//
// Every load loop is bounded in count and time and stops by itself; the sandbox is stopped at the end.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { importLoadHarness } from "./bench/load-module.mjs";
import { analyze, expectSuccess, runNexus } from "./bench/nexus.mjs";
import { releaseIds } from "./bench/release-id.mjs";
import { renderReport } from "./bench/report.mjs";
import {
  APP_NAME,
  machineInfo,
  reloadBalancer,
  sandboxDown,
  sandboxUp,
  timeRemote,
  writeConfig,
  writeHaproxyConfig,
} from "./bench/sandbox.mjs";
import { median } from "./bench/stats.mjs";
import { renderTimeline } from "./bench/svg.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const intEnv = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const RUNS = intEnv("BENCH_RUNS", 3);
/** Deploy + rollback runs through HAProxy (issue 15 asks for 0 failed over at least 5 of each). */
const HAPROXY_RUNS = intEnv("BENCH_HAPROXY_RUNS", 5);
/** Nginx deploy + rollback runs under the storm alone (no mix, so no preconnected connection). */
const STORM_ONLY_RUNS = intEnv("BENCH_STORM_ONLY_RUNS", 3);
/** Keep-alive connections of the POST storm that runs beside the mix (issue 15). */
const STORM_CONNECTIONS = 30;
/** Runs per figure for 6 and 12 servers (3 servers always get at least 3). */
const SCALE_RUNS = intEnv("BENCH_SCALE_RUNS", 2);
const SIZES = (process.env.BENCH_SIZES ?? "3,6,12")
  .split(",")
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 2 && n <= 12);
const BUDGET_S = intEnv("BENCH_BUDGET", 400);
const RATE = 160;
const BEFORE_MS = 2500;
const GAP_MS = 1000;
const TAIL_MS = 3000;
/** The load's first half second (connections opening) is left out of "before". */
const WARMUP_MS = 500;
const LOAD_MAX_SECONDS = 120;
/** The last run's measurements, for `--render`. */
const LAST_RUN = path.join(ROOT, "node_modules", ".cache", "nexus-bench", "last-run.json");

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const startedAt = Date.now();
const elapsed = () => (Date.now() - startedAt) / 1000;
const log = (message) => process.stderr.write(`[bench ${elapsed().toFixed(0).padStart(3)}s] ${message}\n`);

const releaseId = releaseIds("bench");

async function deploy(config, tag) {
  return analyze(
    expectSuccess(
      await runNexus(ROOT, ["-c", config, "deploy", "--rolling", "--release-id", releaseId(tag)]),
    ),
  );
}

async function steady(L, info) {
  if (!(await L.waitForSteady(info.lb.url, 20, 45_000)))
    throw new Error(`the load balancer ${info.lb.url} does not answer 200 steadily`);
}

/**
 * Under load: 3 s, nexus deploy --rolling, 1 s, nexus rollback, 3 s. The load is today's mix plus
 * the storm: 30 keep-alive connections of back-to-back POSTs that are never sent again.
 */
/** How many reloads the sandbox's Nginx master has done: its error log notes each SIGHUP. */
function nginxReloads(info) {
  const log = readFileSync(path.join(path.dirname(info.lb.accessLog), "error.log"), "utf8");
  return log.split("\n").filter((line) => /signal 1 \(SIGHUP\) received.*reconfiguring/.test(line)).length;
}

async function nexusScenario(L, info, config, { mix = true } = {}) {
  await steady(L, info);
  const release = releaseId("nexus");
  const load = mix
    ? L.startLoad({ url: info.lb.url, rate: RATE, maxSeconds: LOAD_MAX_SECONDS })
    : { startedAt: now(), stop: async () => ({ records: [], rate: 0 }) };
  const storm = L.startPostStorm({
    url: info.lb.url,
    connections: STORM_CONNECTIONS,
    maxSeconds: LOAD_MAX_SECONDS,
  });
  let stormResult;
  let deployRun;
  let rollbackRun;
  let result;
  try {
    await sleep(BEFORE_MS);
    const reloadsBefore = nginxReloads(info);
    deployRun = analyze(
      expectSuccess(await runNexus(ROOT, ["-c", config, "deploy", "--rolling", "--release-id", release])),
    );
    deployRun.reloads = nginxReloads(info) - reloadsBefore;
    await sleep(GAP_MS);
    const reloadsBeforeRollback = nginxReloads(info);
    rollbackRun = analyze(expectSuccess(await runNexus(ROOT, ["-c", config, "rollback"])));
    rollbackRun.reloads = nginxReloads(info) - reloadsBeforeRollback;
    await sleep(TAIL_MS);
  } finally {
    [result, stormResult] = await Promise.all([load.stop(), storm.stop()]);
  }
  const w = (from, to) => L.summarize(result.records, from, to);
  const stormIn = (from, to) =>
    L.summarizeStorm(stormResult.records.filter((r) => r.start >= from && r.start < to));
  return {
    release,
    load: result,
    storm: {
      connections: stormResult.connections,
      deploy: stormIn(deployRun.start, rollbackRun.start),
      rollback: stormIn(rollbackRun.start, Number.POSITIVE_INFINITY),
      all: L.summarizeStorm(stormResult.records),
    },
    deploy: deployRun,
    rollback: rollbackRun,
    windows: {
      before: w(load.startedAt + WARMUP_MS, deployRun.start),
      deploy: w(deployRun.start, deployRun.end),
      afterDeploy: w(deployRun.end, rollbackRun.start),
      rollback: w(rollbackRun.start, rollbackRun.end),
      afterRollback: w(rollbackRun.end, rollbackRun.end + TAIL_MS),
    },
  };
}

/** Under load: 3 s, the naive restart of every server onto `release`, 3 s. Then a clean Nginx again. */
async function naiveScenario(L, info, release, pm2Restart) {
  await reloadBalancer(info);
  await steady(L, info);
  const load = L.startLoad({ url: info.lb.url, rate: RATE, maxSeconds: LOAD_MAX_SECONDS });
  let steps;
  let start;
  let end;
  let result;
  try {
    await sleep(BEFORE_MS);
    start = now();
    steps = await L.naiveRollout({
      sshConfig: info.sshConfig,
      hosts: info.hosts.map((h) => ({
        name: h.name,
        deployDir: path.join(h.home, "apps", APP_NAME),
        appUrl: `http://${h.appAddress}`,
      })),
      release,
      restartCommand: (ecosystem) => pm2Restart(APP_NAME, ecosystem),
    });
    end = now();
    await sleep(TAIL_MS);
  } finally {
    result = await load.stop();
  }
  // Nginx counted each restart against max_fails and may have disabled every server for fail_timeout
  // (30s): fresh workers forget that, so the next measurement starts clean.
  await reloadBalancer(info);
  await steady(L, info);
  const w = (from, to) => L.summarize(result.records, from, to);
  return {
    release,
    load: result,
    steps,
    start,
    end,
    seconds: (end - start) / 1000,
    windows: {
      before: w(load.startedAt + WARMUP_MS, start),
      during: w(start, end),
      after: w(end, end + TAIL_MS),
    },
  };
}

/** Deploys to the first `size` servers of the sandbox, at batch size 1 and 25%, `runs` times each. */
async function scaling(info, tmp, size, runs, batchCount, budgetEnd) {
  const subset = { ...info, hosts: info.hosts.slice(0, size) };
  const rows = [];
  const batches = [
    { label: "1", size: 1 },
    { label: "25%", size: "25%" },
  ];
  for (const batch of batches) {
    const perBatch = batchCount(batch.size, size);
    const same = rows.find((r) => r.perBatch === perBatch);
    if (same) {
      rows.push({ ...same, label: batch.label, sameAs: same.label });
      continue;
    }
    const config = await writeConfig(ROOT, subset, tmp, {
      batchSize: batch.size,
      name: `scale-${size}-${perBatch}`,
    });
    const done = [];
    for (let i = 0; i < runs; i++) {
      const last = done.at(-1);
      if (last && Date.now() + last.wall * 1000 > budgetEnd) break;
      done.push(await deploy(config, `s${size}`));
      log(`  ${size} servers, batch ${batch.label} (${perBatch}/batch): ${done.at(-1).wall.toFixed(2)} s`);
    }
    rows.push({ label: batch.label, perBatch, runs: done });
  }
  return rows;
}

/**
 * A deploy's time, modelled on the 3-server deploys: a fixed part (start-up, connect, stage,
 * finish) plus one roll step per batch. Conservative here: those deploys ran under load.
 */
function costModel(iterations, batchCount) {
  const fixed = median(iterations.map((i) => i.nexus.deploy.wall - i.nexus.deploy.segments.roll / 1000));
  const perBatch = median(iterations.map((i) => i.nexus.deploy.segments.roll / 1000 / 3));
  const deploy = (n, size) => fixed + Math.ceil(n / batchCount(size, n)) * perBatch;
  return {
    perBatch,
    deploy,
    // Sandbox up, then the first deploy, which runs npm ci on every server, 4 at a time.
    setup: (n) => 5 + deploy(n, 1) + Math.ceil(n / 4) * 5,
    runs: (n, runs) => runs * (deploy(n, 1) + (batchCount("25%", n) > 1 ? deploy(n, "25%") : 0)),
  };
}

/** The largest sandbox (of SIZES) whose scaling runs fit in the time left: 3 runs for 3 servers, fewer for more. */
function planScaling(model, left) {
  const sizes = [...SIZES].sort((a, b) => a - b);
  for (let k = sizes.length; k > 0; k--) {
    const chosen = sizes.slice(0, k);
    for (const others of [...new Set([SCALE_RUNS, 1])]) {
      const runs = new Map(chosen.map((n) => [n, n === 3 ? 3 : others]));
      const needed =
        model.setup(chosen.at(-1)) + chosen.reduce((total, n) => total + model.runs(n, runs.get(n)), 0);
      if (needed <= left) return { sizes: chosen, runs, needed, skipped: sizes.slice(k) };
    }
  }
  return { sizes: [], runs: new Map(), needed: 0, skipped: sizes };
}

async function main() {
  const loadBefore = os.loadavg()[0];
  await promisify(execFile)("bash", [path.join(ROOT, "scripts", "install-system-deps.sh")]).catch((error) => {
    throw new Error(
      `the sandbox needs sshd, ssh-keygen, nginx, haproxy, socat and pgrep: ${error.stderr || error.message}`,
    );
  });
  const { bundleIsFresh } = await import(pathToFileURL(path.join(ROOT, "scripts", "bundle.mjs")).href);
  if (!(await bundleIsFresh()))
    throw new Error("bundle/nexus.mjs is stale: run `npm run bundle` first (the bench runs what users run)");
  const machine = await machineInfo(ROOT);
  log(`${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, Node ${machine.node}`);
  const L = await importLoadHarness(ROOT);
  // The very PM2 delete + start nexus runs (src/process/pm2/restart-script.ts), for the naive way.
  const { RESTART_SCRIPT } = await import(
    pathToFileURL(path.join(ROOT, "dist", "process", "pm2", "restart-script.js")).href
  );
  const { script } = await import(pathToFileURL(path.join(ROOT, "dist", "remote", "op.js")).href);
  const pm2Restart = (app, ecosystem) => script(RESTART_SCRIPT, app, ecosystem);
  const { batchCount } = await import(pathToFileURL(path.join(ROOT, "dist", "deploy", "plan.js")).href);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-bench-"));
  const budgetEnd = startedAt + BUDGET_S * 1000;
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    log("interrupted: stopping after the current step");
  });

  const iterations = [];
  const haproxy = [];
  const stormOnly = [];
  const scale = [];
  let cli;
  try {
    // 1. Three servers under load.
    log("sandbox: 3 servers");
    let info = await sandboxUp(ROOT, 3);
    const config = await writeConfig(ROOT, info, tmp);
    log("warming up: a first deploy (npm ci on every server)");
    await deploy(config, "warm");
    for (let i = 0; i < RUNS && !interrupted; i++) {
      const nexus = await nexusScenario(L, info, config);
      log(
        `run ${i + 1}/${RUNS}: deploy ${nexus.deploy.wall.toFixed(2)} s, rollback ${nexus.rollback.wall.toFixed(2)} s, failed ${nexus.load.records.filter((r) => r.failure).length}/${nexus.load.records.length} (mix), ${nexus.storm.all.failed}/${nexus.storm.all.requests} (storm: ${nexus.storm.all.resetReused} reset on reused, ${nexus.storm.all.resetFresh} on fresh sockets)`,
      );
      const naive = await naiveScenario(L, info, nexus.release, pm2Restart);
      log(
        `run ${i + 1}/${RUNS}: naive restart ${naive.seconds.toFixed(2)} s, failed ${naive.load.records.filter((r) => r.failure).length}/${naive.load.records.length}`,
      );
      iterations.push({ nexus, naive });
    }

    // 1b. The same Nginx deploy + rollback under the storm alone: its clients send as they connect,
    // so no Nginx worker retired by a reload holds a connection whose request is still to come.
    for (let i = 0; i < STORM_ONLY_RUNS && !interrupted; i++) {
      const run = await nexusScenario(L, info, config, { mix: false });
      log(
        `Nginx, storm alone, run ${i + 1}/${STORM_ONLY_RUNS}: deploy ${run.deploy.wall.toFixed(2)} s, rollback ${run.rollback.wall.toFixed(2)} s, failed ${run.storm.all.failed}/${run.storm.all.requests} (storm)`,
      );
      stormOnly.push(run);
    }

    // 1c. The same deploy + rollback through HAProxy's runtime API (no reload), same load.
    const haproxyConfig = await writeHaproxyConfig(ROOT, info, tmp);
    const haproxyInfo = { ...info, lb: { ...info.lb, url: info.haproxy.url } };
    for (let i = 0; i < HAPROXY_RUNS && !interrupted; i++) {
      const run = await nexusScenario(L, haproxyInfo, haproxyConfig);
      log(
        `HAProxy run ${i + 1}/${HAPROXY_RUNS}: deploy ${run.deploy.wall.toFixed(2)} s, rollback ${run.rollback.wall.toFixed(2)} s, failed ${run.load.records.filter((r) => r.failure).length}/${run.load.records.length} (mix), ${run.storm.all.failed}/${run.storm.all.requests} (storm)`,
      );
      haproxy.push(run);
    }

    // What one `pm2` CLI call costs on a server (the gate's PM2 check and `pm2 save` are such calls).
    cli = await timeRemote(info, ["true", "PM2_SILENT=true pm2 jlist >/dev/null"], 5);

    // 2. Scaling, no load: one sandbox of the largest size that fits, deploying to its first N servers.
    const model = costModel(iterations, batchCount);
    const left = (budgetEnd - Date.now()) / 1000;
    const plan = planScaling(model, left);
    for (const size of plan.skipped) {
      const needed =
        model.setup(size) + [3, 6, 12].filter((n) => n <= size).reduce((t, n) => t + model.runs(n, 1), 0);
      scale.push({
        size,
        skipped: `over the ${BUDGET_S} s budget of the whole bench: ${Math.round(left)} s were left for scaling, and a ${size}-server sandbox needs about ${Math.round(needed)} s (start, first deploy, one run per size and batch size, at ${model.perBatch.toFixed(1)} s per batch as measured under load on ${machine.cores} cores)`,
      });
      log(`${size} servers: skipped`);
    }
    if (plan.sizes.length > 0 && !interrupted) {
      const largest = plan.sizes.at(-1);
      log(
        `scaling: ${plan.sizes.join(", ")} servers, on a ${largest}-server sandbox (about ${Math.round(plan.needed)} s)`,
      );
      if (largest !== info.hosts.length) {
        await sandboxDown(ROOT);
        info = await sandboxUp(ROOT, largest);
        await deploy(await writeConfig(ROOT, info, tmp, { name: `warm-${largest}` }), "warm");
      }
      for (const size of plan.sizes) {
        if (interrupted) break;
        scale.push({
          size,
          rows: await scaling(info, tmp, size, plan.runs.get(size), batchCount, budgetEnd),
        });
      }
    }
  } finally {
    log("stopping the sandbox");
    await sandboxDown(ROOT).catch((error) => log(`sandbox down failed: ${error.message}`));
    rmSync(tmp, { recursive: true, force: true });
  }
  if (iterations.length === 0) throw new Error("no run completed");
  machine.loadAverage = [loadBefore, os.loadavg()[0]];
  const data = { machine, iterations, haproxy, stormOnly, scale, cli, seconds: elapsed() };
  mkdirSync(path.dirname(LAST_RUN), { recursive: true });
  writeFileSync(LAST_RUN, JSON.stringify(data));
  render(data);
}

/** Writes the report and the chart; `node scripts/bench.mjs --render` redoes it from the last run's data. */
function render({ machine, iterations, haproxy = [], stormOnly = [], scale, cli, seconds }) {
  const docs = path.join(ROOT, "docs");
  const chartRun = [...iterations].sort((a, b) => a.nexus.deploy.wall - b.nexus.deploy.wall)[
    Math.floor((iterations.length - 1) / 2)
  ];
  const svg = renderTimeline(chartPanels(chartRun, machine));
  const { markdown, text } = renderReport({
    machine,
    iterations,
    haproxy,
    stormOnly,
    scale,
    cli,
    chartIndex: iterations.indexOf(chartRun),
    settings: { rate: RATE, beforeMs: BEFORE_MS, gapMs: GAP_MS, tailMs: TAIL_MS },
    seconds,
  });
  mkdirSync(docs, { recursive: true });
  writeFileSync(path.join(docs, "benchmark-timeline.svg"), svg);
  writeFileSync(path.join(docs, "benchmarks.md"), markdown);
  process.stdout.write(`${text}\n\nwrote docs/benchmarks.md and docs/benchmark-timeline.svg\n`);
}

function chartPanels({ nexus, naive }, machine) {
  const lanes = (runs) => {
    const names = [...new Set(runs.flatMap((r) => r.servers.map((s) => s.server)))];
    return names.map((label) => {
      const spans = [];
      const marks = [];
      for (const run of runs) {
        const s = run.servers.find((x) => x.server === label);
        if (!s) continue;
        spans.push({ start: s.drainStart, end: s.enableDone ?? s.drainStart, kind: "out" });
        marks.push({ t: s.drainStart, label: "drain", kind: "drain" });
        if (s.enableDone) marks.push({ t: s.enableDone, label: "enable", kind: "enable" });
      }
      return { label, spans, marks };
    });
  };
  const trim = (load, t0, t1) => load.records.filter((r) => r.end >= t0 && r.end <= t1);
  const p1 = { t0: nexus.load.startedAt, t1: nexus.rollback.end + TAIL_MS };
  const p2 = { t0: naive.load.startedAt, t1: naive.end + TAIL_MS };
  const after = naive.windows.after;
  const note =
    after.requests > 0 && after.failed / after.requests > 0.5
      ? [
          `After the restarts, ${Math.round((100 * after.failed) / after.requests)}% of requests fail.`,
          "Nginx counted each restart's connection",
          "errors against max_fails=3 and disabled",
          "the server for fail_timeout=30s; with all",
          'three disabled, it answers 502 ("no live',
          'upstreams") until that expires. The bench',
          "reloads Nginx after the run to end it.",
        ]
      : [`${naive.windows.during.failed + after.failed} failed requests during and after the restarts.`];
  return {
    title: "Throughput and latency through Nginx during a rolling deploy (3 sandbox servers)",
    subtitle: `${RATE} req/s offered: GET / and 100–150 ms POST /api/orders, keep-alive and fresh connections · ${machine.cores} cores, Node ${machine.node}`,
    panels: [
      {
        title: "nexus deploy --rolling, then nexus rollback: drain, switch, restart, gate, enable",
        ...p1,
        records: trim(nexus.load, p1.t0, p1.t1),
        commands: [
          { label: "nexus deploy --rolling", start: nexus.deploy.start, end: nexus.deploy.end },
          { label: "nexus rollback", start: nexus.rollback.start, end: nexus.rollback.end },
        ],
        lanes: lanes([nexus.deploy, nexus.rollback]),
      },
      {
        title: "The naive way: switch and restart each server under PM2, no drain",
        ...p2,
        records: trim(naive.load, p2.t0, p2.t1),
        commands: [{ label: "naive restart, server by server", start: naive.start, end: naive.end }],
        note,
        lanes: naive.steps.map((s) => ({
          label: s.server,
          spans: [{ start: s.restartStart, end: s.healthyAt, kind: "restart" }],
          marks: [{ t: s.restartStart, label: "restart", kind: "restart" }],
        })),
      },
    ],
  };
}

const run = process.argv.includes("--render")
  ? async () => render(JSON.parse(readFileSync(LAST_RUN, "utf8")))
  : main;
run().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
