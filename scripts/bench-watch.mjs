#!/usr/bin/env node
// npm run bench:watch: the watch's targets (issue 29) measured on a sandbox of its own
// (.sandbox-bench-watch, 127.0.19.x, loopback only), under the steady mixed load of `npm run bench`
// (160 req/s through Nginx: two GETs for one 100-150 ms POST), and written to docs/benchmarks-watch.md:
//
//   1. a release whose every 50th request answers 500 (2%; the fleet's own release fails every
//      1000th, 0.1%): seconds from its watch's start to the verdict, and to the fleet restored;
//   2. a release whose every 10th request is 150 ms slower (p99 +150 ms, errors as the fleet's): the same;
//   3. BENCH_WATCH_GOOD (default 20) deploys of a good release: how many the watch rolls back.
//
// rolling.watch is { duration: BENCH_WATCH_DURATION (default "10s"), maxDuration: "30s" }, the
// other settings nexus's defaults. Every load loop is bounded in count and time and stops by
// itself; the sandbox is stopped at the end.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { importLoadHarness } from "./bench/load-module.mjs";
import { runNexus } from "./bench/nexus.mjs";
import { machineInfo } from "./bench/sandbox.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIR = path.join(ROOT, ".sandbox-bench-watch");
const IP_PREFIX = "127.0.19.";
const GOOD = Number(process.env.BENCH_WATCH_GOOD) > 0 ? Number(process.env.BENCH_WATCH_GOOD) : 20;
const DURATION = process.env.BENCH_WATCH_DURATION ?? "10s";
const RATE = 160;
const BASE = { FIXTURE_FAIL_EVERY_NTH_REQUEST: "1000" };

const startedAt = Date.now();
const log = (m) =>
  process.stderr.write(`[bench-watch ${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let sequence = 0;
function releaseId(tag) {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-watch${String(++sequence).padStart(3, "0")}-${tag}`;
}

async function main() {
  const sandbox = await import(pathToFileURL(path.join(ROOT, "dist", "sandbox", "index.js")).href);
  const { bundleIsFresh } = await import(pathToFileURL(path.join(ROOT, "scripts", "bundle.mjs")).href);
  if (!(await bundleIsFresh())) throw new Error("bundle/nexus.mjs is stale: run `npm run bundle` first");
  const machine = await machineInfo(ROOT);
  const L = await importLoadHarness(ROOT);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-bench-watch-"));
  await sandbox.sandboxDown(DIR).catch(() => {});
  rmSync(DIR, { recursive: true, force: true });
  log("sandbox: 3 servers");
  await sandbox.sandboxUp({ dir: DIR, ipPrefix: IP_PREFIX, hosts: 3 });
  const info = JSON.parse(readFileSync(path.join(DIR, "sandbox.json"), "utf8"));
  const config = (name, env, watch = { duration: DURATION, maxDuration: "30s" }) => {
    const file = path.join(tmp, `${name}.json`);
    const base = sandbox.sandboxDeployConfig(info, {
      appRoot: path.join(ROOT, "fixtures", "app"),
      appName: "nexus-app",
    });
    writeFileSync(
      file,
      JSON.stringify({ ...base, pm2: { env: { NODE_ENV: "production", ...env } }, rolling: { watch } }),
    );
    return file;
  };
  const deploy = (file, tag) => runNexus(ROOT, ["-c", file, "deploy", "--release-id", releaseId(tag)]);
  const results = { bad: [], good: [] };
  try {
    log("warming up: a first deploy (npm ci on every server), no watch");
    const warm = await deploy(config("warm", BASE, 0), "warm");
    if (warm.code !== 0) throw new Error(`the first deploy failed:\n${warm.stderr}`);
    if (!(await L.waitForSteady(info.lb.url, 20, 45_000)))
      throw new Error("the balancer does not answer steadily");
    const load = L.startLoad({ url: info.lb.url, rate: RATE, maxSeconds: 60 * 30 });
    try {
      await sleep(2000);
      for (const [tag, env, what] of [
        ["errors", { FIXTURE_FAIL_EVERY_NTH_REQUEST: "50" }, "2% of 5xx (the fleet 0.1%)"],
        [
          "slow",
          { ...BASE, FIXTURE_SLOW_EVERY_NTH_REQUEST: "10", FIXTURE_SLOW_MS: "150" },
          "every 10th request 150 ms slower",
        ],
      ]) {
        const run = await deploy(config(tag, env), tag);
        const watching = run.events.find((e) => e.type === "info" && /^watching /.test(e.message));
        const verdict = run.events.find((e) => e.type === "watch");
        const summary = run.events.find((e) => e.type === "summary");
        const row = {
          what,
          exit: run.code,
          result: verdict?.result,
          metric: verdict?.metric,
          toVerdict: watching && verdict ? (verdict.t - watching.t) / 1000 : Number.NaN,
          toRestored: watching && summary ? (summary.t - watching.t) / 1000 : Number.NaN,
          message: verdict?.message ?? "",
        };
        results.bad.push(row);
        log(
          `${what}: exit ${row.exit}, ${row.result} (${row.metric}) ${row.toVerdict.toFixed(1)} s after its watch began, restored at ${row.toRestored.toFixed(1)} s: ${row.message}`,
        );
      }
      for (let i = 0; i < GOOD; i++) {
        const run = await deploy(config("good", BASE), "good");
        const watches = run.events.filter((e) => e.type === "watch");
        const row = {
          exit: run.code,
          results: watches.map((e) => e.result),
          fails: watches.filter((e) => e.verdict === "fail").map((e) => `${e.server}: ${e.message}`),
          inconclusive: watches.filter((e) => e.verdict === "inconclusive").length,
          seconds: (run.exitedAt - run.spawnedAt) / 1000,
        };
        results.good.push(row);
        log(
          `good ${i + 1}/${GOOD}: exit ${row.exit} in ${row.seconds.toFixed(1)} s, watches ${row.results.join(", ")}${row.fails.length ? `: ${row.fails.join("; ")}` : ""}`,
        );
      }
    } finally {
      const done = await load.stop();
      results.load = { requests: done.records.length, seconds: (done.stoppedAt - done.startedAt) / 1000 };
    }
  } finally {
    await sandbox.sandboxDown(DIR).catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(path.join(ROOT, "docs", "benchmarks-watch.md"), render(results, machine));
  log("wrote docs/benchmarks-watch.md");
}

function render(results, machine) {
  const rolledBack = results.good.filter((r) => r.exit !== 0).length;
  const windows = results.good.reduce((n, r) => n + r.results.length, 0);
  const inconclusive = results.good.reduce((n, r) => n + r.inconclusive, 0);
  return [
    "# The watch under load (`npm run bench:watch`)",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine.cores} cores, Node ${machine.node}: 3 sandbox servers behind Nginx, ${RATE} req/s offered (two GETs for one 100–150 ms POST; ${results.load.requests} requests in ${results.load.seconds.toFixed(0)} s), \`rolling.watch\` = \`{ "duration": "${DURATION}", "maxDuration": "30s" }\`, the judge's defaults otherwise. The fleet's own release fails 0.1% of its requests. scripts/bench-watch.mjs.`,
    "",
    "| release | exit | watch | decided by | verdict after its watch began | fleet restored | the reason |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...results.bad.map(
      (r) =>
        `| ${r.what} | ${r.exit} | ${r.result} | ${r.metric ?? "-"} | ${r.toVerdict.toFixed(1)} s | ${r.toRestored.toFixed(1)} s | ${r.message.replace(/\|/g, "\\|")} |`,
    ),
    "",
    `${results.good.length} deploys of a good release under the same load: **${rolledBack} rolled back**, ${windows} windows judged, ${inconclusive} of them inconclusive (then passed: \`inconclusive\` is \`"pass"\`).`,
    "",
    "| deploy | exit | watches | seconds |",
    "| --- | --- | --- | --- |",
    ...results.good.map(
      (r, i) => `| ${i + 1} | ${r.exit} | ${r.results.join(", ")} | ${r.seconds.toFixed(1)} |`,
    ),
    "",
  ].join("\n");
}

main().catch((error) => {
  process.stderr.write(`bench-watch failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
