#!/usr/bin/env node
// The surge strategy's figures (issue 28), part of `npm run bench`: on the bench's sandbox
// (.sandbox-bench, 127.0.9.x, loopback only), through HAProxy, under the keep-alive POST storm that
// never sends a request again:
//
//   1. BENCH_SURGE_RUNS (default 5) surge deploys and as many rollbacks, for a fleet of 3 and a
//      fleet of 1 (the other two servers in maintenance), with HAProxy's live state sampled every
//      50 ms: how many requests failed, and whether any server was ever out of rotation.
//   2. The same 3-server release deployed with the drain strategy and with surge, interleaved, no
//      load: which takes longer.
//
// Writes docs/benchmarks-surge.md. Every load loop is bounded and the sandbox is stopped at the end.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { importLoadHarness } from "./bench/load-module.mjs";
import { analyze, expectSuccess, runNexus } from "./bench/nexus.mjs";
import { releaseIds } from "./bench/release-id.mjs";
import { machineInfo, sandboxDir, sandboxDown, sandboxUp, writeHaproxyConfig } from "./bench/sandbox.mjs";
import { median, ms, table } from "./bench/stats.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const RUNS = Math.max(1, Number(process.env.BENCH_SURGE_RUNS) || 5);
const STORM_CONNECTIONS = 10;
const releaseId = releaseIds("surge");

const { haproxyPaths } = await import(pathToFileURL(path.join(ROOT, "dist", "sandbox", "haproxy.js")).href);
const { parseServersState } = await import(
  pathToFileURL(path.join(ROOT, "dist", "balancer", "haproxy", "stats.js")).href
);
const { serverLines } = await import(
  pathToFileURL(path.join(ROOT, "dist", "balancer", "haproxy", "standby.js")).href
);

async function admin(info, commands) {
  const socket = haproxyPaths(path.join(sandboxDir(ROOT), "hosts", info.haproxy.host, "home")).socket;
  const { stdout } = await run("sh", [
    "-c",
    'printf "%s\\n" "$2" | socat stdio "UNIX-CONNECT:$1"',
    "sh",
    socket,
    commands.join(";"),
  ]);
  return stdout;
}

/** Every 50 ms: each server's live line, and the samples in which one of `servers` was not up. */
function sampleCapacity(L, info, servers) {
  const sampler = L.sampleEvery(50, async () => {
    const states = parseServersState(await admin(info, [`show servers state ${info.haproxy.backend}`]));
    return servers.filter((name) => {
      const live = serverLines(states, name).live;
      return !live || live.maint || live.drain || live.operational !== 2;
    });
  });
  return {
    stop: async () => {
      const { samples, wrong } = await sampler.stop();
      return { samples, down: wrong.length };
    },
  };
}

function surgeConfig(base, servers) {
  const config = JSON.parse(readFileSync(base, "utf8"));
  config.rolling = { ...config.rolling, strategy: "surge" };
  if (servers) config.servers = config.servers.slice(0, servers);
  const file = path.join(path.dirname(base), `surge-${servers ?? "all"}.config.json`);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** `args` under the storm through HAProxy, with the capacity sampler: failures, samples down, wall time. */
async function underStorm(L, info, servers, args) {
  if (!(await L.waitForSteady(info.haproxy.url))) throw new Error(`${info.haproxy.url} is not serving`);
  const storm = L.startPostStorm({ url: info.haproxy.url, connections: STORM_CONNECTIONS, maxSeconds: 150 });
  const sampler = sampleCapacity(L, info, servers);
  let nexusRun;
  let failure;
  try {
    await sleep(1000);
    nexusRun = analyze(expectSuccess(await runNexus(ROOT, args)));
    await sleep(1000);
  } catch (error) {
    failure = error;
  }
  const stormResult = await storm.stop();
  const capacity = await sampler.stop();
  if (failure) throw failure;
  const summary = L.summarizeStorm(stormResult.records);
  return { wall: nexusRun.wall, requests: summary.requests, failed: summary.failed, ...capacity };
}

async function main() {
  const started = Date.now();
  const L = await importLoadHarness(ROOT);
  const machine = await machineInfo(ROOT);
  const info = await sandboxUp(ROOT, 3);
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-bench-surge-"));
  const servers = info.hosts.map((h) => h.name);
  const results = { fleet3: [], fleet1: [], drain: [], surge: [] };
  try {
    const base = await writeHaproxyConfig(ROOT, info, dir);
    const three = surgeConfig(base);
    const one = surgeConfig(base, 1);
    expectSuccess(await runNexus(ROOT, ["-c", base, "deploy", "--release-id", releaseId("base")]));
    for (let i = 0; i < RUNS; i++) {
      const deploy = await underStorm(L, info, servers, [
        "-c",
        three,
        "deploy",
        "--release-id",
        releaseId("3"),
      ]);
      const rollback = await underStorm(L, info, servers, ["-c", three, "rollback"]);
      results.fleet3.push({ deploy, rollback });
      console.error(
        `fleet of 3, run ${i + 1}/${RUNS}: failed ${deploy.failed}/${deploy.requests} + ${rollback.failed}/${rollback.requests}, down ${deploy.down + rollback.down}/${deploy.samples + rollback.samples} samples`,
      );
    }
    await admin(
      info,
      servers.slice(1).map((s) => `set server ${info.haproxy.backend}/${s} state maint`),
    );
    try {
      for (let i = 0; i < RUNS; i++) {
        const deploy = await underStorm(L, info, servers.slice(0, 1), [
          "-c",
          one,
          "deploy",
          "--release-id",
          releaseId("1"),
        ]);
        const rollback = await underStorm(L, info, servers.slice(0, 1), ["-c", one, "rollback"]);
        results.fleet1.push({ deploy, rollback });
        console.error(
          `fleet of 1, run ${i + 1}/${RUNS}: failed ${deploy.failed}/${deploy.requests} + ${rollback.failed}/${rollback.requests}, down ${deploy.down + rollback.down}/${deploy.samples + rollback.samples} samples`,
        );
      }
    } finally {
      await admin(
        info,
        servers.slice(1).map((s) => `set server ${info.haproxy.backend}/${s} state ready`),
      );
    }
    // Drain vs surge, interleaved, no load: each run deploys a new release both ways. A surge
    // leaves servers on either port, so each run starts from app.port (an even number of surges).
    for (let i = 0; i < Math.max(2, Math.ceil(RUNS / 2)); i++) {
      const drain = analyze(
        expectSuccess(await runNexus(ROOT, ["-c", base, "deploy", "--release-id", releaseId("d")])),
      );
      const first = analyze(
        expectSuccess(await runNexus(ROOT, ["-c", three, "deploy", "--release-id", releaseId("s")])),
      );
      const second = analyze(
        expectSuccess(await runNexus(ROOT, ["-c", three, "deploy", "--release-id", releaseId("s")])),
      );
      results.drain.push(drain);
      results.surge.push(first, second);
      console.error(
        `drain ${drain.wall.toFixed(2)} s, surge ${first.wall.toFixed(2)} s and ${second.wall.toFixed(2)} s`,
      );
    }
  } finally {
    await sandboxDown(ROOT).catch(() => {});
  }
  writeFileSync(
    path.join(ROOT, "docs", "benchmarks-surge.md"),
    render(results, machine, Date.now() - started),
  );
  console.error("wrote docs/benchmarks-surge.md");
}

function totals(runs) {
  const all = runs.flatMap((r) => [r.deploy, r.rollback]);
  const sum = (key) => all.reduce((n, r) => n + r[key], 0);
  return { requests: sum("requests"), failed: sum("failed"), samples: sum("samples"), down: sum("down") };
}

function render(results, machine, tookMs) {
  const rows = [
    ["fleet of 3", results.fleet3],
    ["fleet of 1", results.fleet1],
  ].map(([name, runs]) => {
    const t = totals(runs);
    return [
      `${name}: ${runs.length} surge deploys + ${runs.length} rollbacks`,
      `${t.failed} of ${t.requests}`,
      `${t.down} of ${t.samples}`,
      t.failed === 0 && t.down === 0 ? "yes" : "**no**",
    ];
  });
  const drain = median(results.drain.map((r) => r.wall));
  const surge = median(results.surge.map((r) => r.wall));
  rows.push([
    "3-server deploy: surge vs drain (median, no load)",
    `${surge.toFixed(2)} s vs ${drain.toFixed(2)} s`,
    "",
    surge <= drain ? "yes" : "**no**",
  ]);
  return `# Benchmarks: the surge strategy

Generated by \`node scripts/bench-surge.mjs\` (part of \`npm run bench\`) on ${new Date().toISOString()}; the measurements took ${Math.round(tookMs / 1000)} s. Do not edit by hand.

Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB.toFixed(0)} GiB, ${machine.os}, Node ${machine.node}; load average ${os.loadavg()[0].toFixed(2)} at the end.

The bench's sandbox (3 app servers, HAProxy with a standby line per server, all on loopback).
Under ${STORM_CONNECTIONS} keep-alive connections sending POSTs back to back through HAProxy, never
sending one again; HAProxy's live state read every 50 ms: a sample is "down" when one of the
fleet's servers has no line up and in rotation. Failed: any request without a 2xx answer (reset,
timeout, non-2xx).

${table(["", "failed requests", "samples with a server out of rotation", "target met"], rows)}

Where a 3-server deploy's time goes, drain vs surge (no load, the runs interleaved; medians):

${table(["", "drain", "surge"], whereTimeGoes(results))}
`;
}

/**
 * The segments of the whole command, and the per-server steps: a drain server's are drain →
 * switch → restart → gate → enable; a surge server's switch, restart and gate run beside the
 * old process, its enable is the balancer's move, and its drain (the old process's) runs after.
 */
function whereTimeGoes(results) {
  const seg = (runs, name) => ms(median(runs.map((r) => r.segments[name])));
  const step = (runs, name) => ms(median(runs.flatMap((r) => r.servers.map((s) => s.ms[name]))));
  const rows = [
    ["start-up: Node, the CLI's modules, the config", "startup"],
    ["connect, pack, preflight, locks", "preflight"],
    ["stage", "stage"],
    ["roll: the batches", "roll"],
    ["last server switched → result", "finish"],
    ["result → process exit", "exit"],
  ].map(([label, name]) => [label, seg(results.drain, name), seg(results.surge, name)]);
  for (const name of ["drain", "switch", "restart", "gate", "enable"])
    rows.push([`per server: ${name}`, step(results.drain, name), step(results.surge, name)]);
  return rows;
}

await main();
