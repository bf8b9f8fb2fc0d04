#!/usr/bin/env node
// Real servers and fleets (not a test): `npm run build && npm run bundle && node scripts/bench-servers.mjs`.
// Writes docs/benchmarks-servers.md (`--render` redraws it from the last run's data).
//
// On the bench's sandbox (.sandbox-bench, 127.0.9.x, loopback only), no load:
//   servers  3 servers, batch 1: deploy + rollback in three scenarios, interleaved run by run:
//            plain; a login shell that takes BENCH_LOGIN_DELAY s (0.3) to start (`sleep` in each
//            host's ~/.bashrc, as nvm's init costs); BENCH_RTT_MS (40) of round trip on every SSH
//            connection (a TCP proxy in front of each sshd adding half of it each way). Each
//            command's SSH operations are counted (NEXUS_SSH_TRACE): handshakes, exec channels
//            (one login-shell start each), exchanges with the remote shell, SFTP requests,
//            forwarded connections, and which steps paid for them.
//   bastion  the same deploy through a bastion (`sandbox up --bastion`), vs plain above.
//   fleet    a BENCH_FLEET_HOSTS (50) server sandbox: deploys to its first 3 (batch 1), 12 (25%)
//            and 50 (10%) servers; connect + preflight and the CLI's peak RSS for 50; status on 50.
// BENCH_ONLY=servers,bastion,fleet picks stages; BENCH_SERVER_RUNS (3), BENCH_FLEET_RUNS (2).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { spawnLatencyProxies } from "./bench/latency-proxy.mjs";
import { analyze, expectSuccess, runNexus } from "./bench/nexus.mjs";
import { releaseIds } from "./bench/release-id.mjs";
import { machineInfo, sandboxDir, sandboxDown, sandboxUp, writeConfig } from "./bench/sandbox.mjs";
import { max, median, min, ms, secs } from "./bench/stats.mjs";
import { KINDS, summarizeTrace } from "./bench/trace.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LAST_RUN = path.join(ROOT, "node_modules", ".cache", "nexus-bench", "last-run-servers.json");
const intEnv = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const ONLY = new Set((process.env.BENCH_ONLY ?? "servers,bastion,fleet").split(",").map((s) => s.trim()));
const SERVER_RUNS = intEnv("BENCH_SERVER_RUNS", 3);
const FLEET_RUNS = intEnv("BENCH_FLEET_RUNS", 2);
const FLEET_HOSTS = intEnv("BENCH_FLEET_HOSTS", 50);
const RTT_MS = intEnv("BENCH_RTT_MS", 40);
const LOGIN_DELAY = Number(process.env.BENCH_LOGIN_DELAY ?? 0.3);
/** The proxies listen on each host's address, this far above its sshd port. */
const PROXY_PORT_OFFSET = 100;

const startedAt = Date.now();
const log = (message) =>
  process.stderr.write(
    `[bench-servers ${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)}s] ${message}\n`,
  );

const releaseId = releaseIds("sv");

const sandboxModule = () => import(pathToFileURL(path.join(ROOT, "dist", "sandbox", "index.js")).href);

/**
 * One CLI run with its SSH operations traced and its peak RSS kept: the analysis (bench/nexus.mjs)
 * plus `ops` (counts per kind, per server, per step) and `rssMiB`.
 */
let measuredRuns = 0;
async function measured(tmp, args, label, { mustSucceed = true } = {}) {
  const runNumber = ++measuredRuns;
  const trace = path.join(tmp, `trace-${label}-${runNumber}.jsonl`);
  const rss = path.join(tmp, `rss-${label}-${runNumber}.txt`);
  const cpuBefore = machineCpuMs();
  const raw = await runNexus(ROOT, args, 600_000, {
    NEXUS_SSH_TRACE: trace,
    BENCH_RSS_FILE: rss,
    NODE_OPTIONS:
      `${process.env.NODE_OPTIONS ?? ""} --require ${path.join(ROOT, "scripts", "bench", "max-rss.cjs")}`.trim(),
  });
  const run = mustSucceed ? expectSuccess(raw) : raw;
  const result = analyze(run);
  result.code = run.code;
  result.ops = summarizeTrace(trace);
  result.machineCpuMs = machineCpuMs() - cpuBefore;
  try {
    const [maxRss, cliCpu] = readFileSync(rss, "utf8").split(" ").map(Number);
    result.rssMiB = maxRss / 1024;
    result.cliCpuMs = cliCpu;
  } catch {
    result.rssMiB = Number.NaN;
    result.cliCpuMs = Number.NaN;
  }
  return result;
}

/**
 * CPU time the whole machine has spent busy since boot, every core (ms): /proc/stat's user, nice,
 * system, irq, softirq and steal. The sandbox's servers are processes of this machine: what a
 * deploy costs them is this, less the CLI's own.
 */
function machineCpuMs() {
  try {
    const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
    const ticks = user + nice + system + irq + softirq + (steal ?? 0);
    return (ticks * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A copy of the sandbox's config whose servers are reached through the latency proxies. */
function proxiedConfig(info, file, tmp) {
  const config = JSON.parse(readFileSync(file, "utf8"));
  const known = readFileSync(info.knownHosts, "utf8")
    .split("\n")
    .filter(Boolean)
    .flatMap((line) => {
      const [pattern, ...key] = line.split(" ");
      const match = /^\[(.+)\]:(\d+)$/.exec(pattern);
      if (!match) return [line];
      return [line, `[${match[1]}]:${Number(match[2]) + PROXY_PORT_OFFSET} ${key.join(" ")}`];
    });
  const knownHosts = path.join(tmp, "known_hosts-rtt");
  writeFileSync(knownHosts, `${known.join("\n")}\n`);
  config.servers = config.servers.map((s) => ({ ...s, port: s.port + PROXY_PORT_OFFSET }));
  config.ssh = { ...config.ssh, knownHosts };
  const out = path.join(tmp, "rtt.config.json");
  writeFileSync(out, `${JSON.stringify(config, null, 2)}\n`);
  return out;
}

async function deployAndRollback(tmp, config, tag) {
  const deploy = await measured(
    tmp,
    ["-c", config, "deploy", "--rolling", "--release-id", releaseId(tag)],
    `${tag}-deploy`,
  );
  const rollback = await measured(tmp, ["-c", config, "rollback"], `${tag}-rollback`);
  return { deploy, rollback };
}

async function serversStage(tmp, machine) {
  log("sandbox: 3 servers");
  const info = await sandboxUp(ROOT, 3);
  const { setLoginDelay } = await sandboxModule();
  const config = await writeConfig(ROOT, info, tmp);
  const proxies = await spawnLatencyProxies(
    info.hosts.map((h) => ({
      listen: { host: h.address, port: h.sshPort + PROXY_PORT_OFFSET },
      target: { host: h.address, port: h.sshPort },
    })),
    RTT_MS / 2,
  );
  try {
    const rttConfig = proxiedConfig(info, config, tmp);
    const measuredRtt = proxies.rttMs;
    log(`latency proxies up: ${measuredRtt.toFixed(1)} ms per round trip through one (echo, median)`);
    log("warming up: a first deploy (npm ci on every server)");
    await measured(tmp, ["-c", config, "deploy", "--rolling", "--release-id", releaseId("warm")], "warm");
    const scenarios = {
      plain: { label: "plain (loopback, instant login shell)", runs: [] },
      slow: { label: `login shell of ${LOGIN_DELAY} s (~/.bashrc)`, runs: [] },
      rtt: { label: `${RTT_MS} ms round trip on SSH`, runs: [] },
    };
    for (let i = 0; i < SERVER_RUNS; i++) {
      for (const [name, scenario] of Object.entries(scenarios)) {
        if (name === "slow") await setLoginDelay(sandboxDir(ROOT), LOGIN_DELAY);
        try {
          const run = await deployAndRollback(tmp, name === "rtt" ? rttConfig : config, name);
          scenario.runs.push(run);
          log(
            `run ${i + 1}/${SERVER_RUNS} ${name}: deploy ${run.deploy.wall.toFixed(2)} s, rollback ${run.rollback.wall.toFixed(2)} s, out of rotation ${secs(median(run.deploy.servers.map((s) => s.outOfRotation)))}, ${run.deploy.ops.total.channel} exec channels, ${run.deploy.ops.total.shell} shell exchanges`,
          );
        } finally {
          if (name === "slow") await setLoginDelay(sandboxDir(ROOT), 0);
        }
      }
    }
    return {
      scenarios,
      measuredRttMs: measuredRtt,
      rttMs: RTT_MS,
      loginDelay: LOGIN_DELAY,
      machine: machine.cores,
    };
  } finally {
    await proxies.close();
  }
}

/**
 * 3 servers, batch 1, deploy + rollback directly and through a bastion (the sandbox's, whose app
 * hosts also take direct logins here), interleaved on one sandbox.
 */
async function bastionStage(tmp) {
  log("sandbox: 3 servers behind a bastion");
  await sandboxDown(ROOT).catch(() => {});
  const info = await sandboxUp(ROOT, 3, { bastion: true, bastionDirect: true });
  const direct = await writeConfig(ROOT, info, tmp, { name: "bastion-direct" });
  const through = JSON.parse(readFileSync(direct, "utf8"));
  through.ssh = { ...through.ssh, proxyJump: `${info.user}@${info.bastion.address}:${info.bastion.sshPort}` };
  const viaFile = path.join(tmp, "bastion-via.config.json");
  writeFileSync(viaFile, `${JSON.stringify(through, null, 2)}\n`);
  log("warming up: a first deploy (npm ci on every server)");
  await measured(
    tmp,
    ["-c", direct, "deploy", "--rolling", "--release-id", releaseId("bwarm")],
    "bastion-warm",
  );
  const scenarios = { direct: { runs: [] }, bastion: { runs: [] } };
  for (let i = 0; i < SERVER_RUNS; i++) {
    for (const [name, file] of [
      ["direct", direct],
      ["bastion", viaFile],
    ]) {
      const run = await deployAndRollback(tmp, file, `b-${name}`);
      scenarios[name].runs.push(run);
      log(
        `run ${i + 1}/${SERVER_RUNS} ${name}: deploy ${run.deploy.wall.toFixed(2)} s, rollback ${run.rollback.wall.toFixed(2)} s`,
      );
    }
  }
  return { scenarios };
}

async function fleetStage(tmp) {
  log(`sandbox: ${FLEET_HOSTS} servers`);
  await sandboxDown(ROOT).catch(() => {});
  const info = await sandboxUp(ROOT, FLEET_HOSTS);
  const sizes = [
    { n: 3, batch: 1 },
    { n: 12, batch: "25%" },
    { n: FLEET_HOSTS, batch: "10%" },
  ];
  const configs = new Map();
  for (const { n, batch } of sizes) {
    const file = await writeConfig(ROOT, { ...info, hosts: info.hosts.slice(0, n) }, tmp, {
      batchSize: batch,
      name: `fleet-${n}`,
    });
    configs.set(n, file);
  }
  log(`warming up: a first deploy to ${FLEET_HOSTS} servers (npm ci on each)`);
  const warm = await measured(
    tmp,
    ["-c", configs.get(FLEET_HOSTS), "deploy", "--rolling", "--release-id", releaseId("fwarm")],
    "fleet-warm",
  );
  log(`warm-up: ${warm.wall.toFixed(1)} s`);
  const rows = sizes.map((s) => ({ ...s, runs: [] }));
  for (let i = 0; i < FLEET_RUNS; i++) {
    for (const row of rows) {
      const run = await measured(
        tmp,
        ["-c", configs.get(row.n), "deploy", "--rolling", "--release-id", releaseId(`f${row.n}`)],
        `fleet-${row.n}`,
      );
      row.runs.push(run);
      log(
        `run ${i + 1}/${FLEET_RUNS}: ${row.n} servers at ${row.batch}: ${run.wall.toFixed(2)} s (connect + preflight ${ms(run.segments.preflight)}, stage ${ms(run.segments.stage)}, peak RSS ${run.rssMiB.toFixed(0)} MiB)`,
      );
    }
  }
  const status = [];
  for (let i = 0; i < 3; i++) {
    // Exit 1 when a server did not answer: counted, not fatal.
    const run = await measured(tmp, ["-c", configs.get(FLEET_HOSTS), "status"], "fleet-status", {
      mustSucceed: false,
    });
    status.push({ wall: run.wall, code: run.code, rssMiB: run.rssMiB, ops: run.ops.total });
  }
  log(`status on ${FLEET_HOSTS}: ${secs(median(status.map((s) => s.wall)))}`);
  return { hosts: FLEET_HOSTS, rows, status, warmSeconds: warm.wall };
}

async function main() {
  const { bundleIsFresh } = await import(pathToFileURL(path.join(ROOT, "scripts", "bundle.mjs")).href);
  if (!(await bundleIsFresh()))
    throw new Error("bundle/nexus.mjs is stale: run `npm run bundle` first (the bench runs what users run)");
  const machine = await machineInfo(ROOT);
  const loadBefore = os.loadavg()[0];
  const tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-bench-servers-"));
  const data = { machine, started: new Date().toISOString() };
  try {
    // Saved after each stage: a later failure keeps what was measured.
    const save = () => {
      mkdirSync(path.dirname(LAST_RUN), { recursive: true });
      writeFileSync(LAST_RUN, JSON.stringify({ ...data, seconds: (Date.now() - startedAt) / 1000 }));
    };
    if (ONLY.has("servers")) {
      data.servers = await serversStage(tmp, machine);
      save();
    }
    if (ONLY.has("bastion")) {
      data.bastion = await bastionStage(tmp);
      save();
    }
    if (ONLY.has("fleet")) {
      data.fleet = await fleetStage(tmp);
      save();
    }
  } finally {
    log("stopping the sandbox");
    await sandboxDown(ROOT).catch((error) => log(`sandbox down failed: ${error.message}`));
    rmSync(tmp, { recursive: true, force: true });
  }
  data.machine.loadAverage = [loadBefore, os.loadavg()[0]];
  data.seconds = (Date.now() - startedAt) / 1000;
  mkdirSync(path.dirname(LAST_RUN), { recursive: true });
  writeFileSync(LAST_RUN, JSON.stringify(data));
  render(data);
}

// ---- the report -------------------------------------------------------------------------------

const perServer = (run) => median(run.servers.map((s) => s.outOfRotation));
const walls = (runs) => runs.map((r) => r.wall);
const range = (values, fmt = (v) => v.toFixed(2)) =>
  `${fmt(median(values))} s (${fmt(min(values))}–${fmt(max(values))})`;
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN);
const x = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : "–");

function table(header, rows) {
  // A cell's "|" would end it; the checkout's path is not worth printing.
  const cell = (c) => String(c).replaceAll(ROOT, "<project>").replaceAll("|", "\\|");
  const all = [header, ...rows].map((r) => r.map(cell));
  const widths = header.map((_, i) => Math.max(3, ...all.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    line(all[0]),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...all.slice(1).map(line),
  ].join("\n");
}

function targetsOf(data) {
  const targets = [];
  const s = data.servers?.scenarios;
  if (s) {
    const deploys = (k) => s[k].runs.map((r) => r.deploy);
    const rollbacks = (k) => s[k].runs.map((r) => r.rollback);
    const wall = (k) => median(walls(deploys(k)));
    const oor = (k) => median(deploys(k).map(perServer));
    const slowRatio = ratio(wall("slow"), wall("plain"));
    targets.push(
      {
        what: `login shell of ${data.servers.loginDelay} s: 3-server deploy vs plain`,
        target: "≤ 1.25×",
        measured: `${x(slowRatio)} (${secs(wall("slow"))} vs ${secs(wall("plain"))})`,
        met: slowRatio <= 1.25,
      },
      {
        what: `login shell of ${data.servers.loginDelay} s: out of rotation per server vs plain`,
        target: "≤ plain + 0.1 s",
        measured: `${secs(oor("slow"))} vs ${secs(oor("plain"))}`,
        met: oor("slow") <= oor("plain") + 0.1,
      },
      {
        what: `${data.servers.rttMs} ms RTT: out of rotation per server`,
        target: "≤ 1.5 s",
        measured: secs(oor("rtt")),
        met: oor("rtt") <= 1.5,
      },
      {
        what: `${data.servers.rttMs} ms RTT: 3-server deploy`,
        target: "≤ 8 s",
        measured: secs(wall("rtt")),
        met: wall("rtt") <= 8,
      },
      {
        what: `${data.servers.rttMs} ms RTT: 3-server rollback`,
        target: "≤ 7 s",
        measured: secs(median(walls(rollbacks("rtt")))),
        met: median(walls(rollbacks("rtt"))) <= 7,
      },
    );
    const exits = Object.keys(s).map((k) => ({
      k,
      worst: max([...deploys(k), ...rollbacks(k)].map((r) => r.segments.exit / 1000)),
    }));
    targets.push({
      what: "result printed → process exit, every scenario (worst run)",
      target: "≤ 0.3 s",
      measured: exits.map((e) => `${e.k} ${ms(e.worst * 1000)}`).join(", "),
      met: exits.every((e) => e.worst <= 0.3),
    });
  }
  const b = data.bastion?.scenarios;
  if (b) {
    const wall = (k) => median(walls(b[k].runs.map((r) => r.deploy)));
    const r = ratio(wall("bastion"), wall("direct"));
    targets.push({
      what: "through a bastion: 3-server deploy vs direct (same sandbox, interleaved)",
      target: "≤ 1.2×",
      measured: `${x(r)} (${secs(wall("bastion"))} vs ${secs(wall("direct"))})`,
      met: r <= 1.2,
    });
  }
  const f = data.fleet;
  if (f) {
    const wall = (n) => median(walls(f.rows.find((r) => r.n === n).runs));
    const r12 = ratio(wall(12), wall(3));
    const rN = ratio(wall(f.hosts), wall(3));
    const big = f.rows.find((r) => r.n === f.hosts).runs;
    const preflight = median(big.map((r) => r.segments.preflight / 1000));
    const rss = max(big.map((r) => r.rssMiB));
    targets.push(
      { what: "12 servers at batch 25% vs 3 servers", target: "≤ 1.6×", measured: x(r12), met: r12 <= 1.6 },
      {
        what: `${f.hosts} servers at batch 10% vs 3 servers`,
        target: "≤ 2.5×",
        measured: x(rN),
        met: rN <= 2.5,
      },
      {
        what: `connect + preflight, ${f.hosts} servers`,
        target: "≤ 2 s",
        measured: secs(preflight),
        met: preflight <= 2,
      },
      {
        what: `peak RSS of the CLI, ${f.hosts}-server deploy`,
        target: "≤ 200 MB",
        measured: `${rss.toFixed(0)} MiB`,
        met: rss * 1.048576 <= 200,
      },
    );
  }
  return targets;
}

function scenarioTables(servers) {
  const { scenarios } = servers;
  const names = Object.keys(scenarios);
  const col = (k) => scenarios[k].runs;
  const rows = [];
  const add = (label, f) => rows.push([label, ...names.map((k) => f(col(k)))]);
  add("deploy, process start to exit", (runs) => range(walls(runs.map((r) => r.deploy))));
  add("rollback, process start to exit", (runs) => range(walls(runs.map((r) => r.rollback))));
  add("out of rotation per server (deploy)", (runs) => secs(median(runs.map((r) => perServer(r.deploy)))));
  add("out of rotation per server (rollback)", (runs) =>
    secs(median(runs.map((r) => perServer(r.rollback)))),
  );
  const seg = (name) => (runs) => ms(median(runs.map((r) => r.deploy.segments[name])));
  add("deploy: start-up (Node, modules, config)", seg("startup"));
  add("deploy: connect, pack, preflight, locks", seg("preflight"));
  add("deploy: stage", seg("stage"));
  add("deploy: roll", seg("roll"));
  add("deploy: last server back → result", seg("finish"));
  add("deploy: result → process exit", seg("exit"));
  add("rollback: result → process exit", (runs) => ms(median(runs.map((r) => r.rollback.segments.exit))));
  const step = (name) => (runs) => ms(median(runs.flatMap((r) => r.deploy.servers.map((s) => s.ms[name]))));
  for (const name of ["drain", "switch", "restart", "gate", "enable"])
    add(`deploy, per server: ${name}`, step(name));
  const main = table(["3 servers, batch 1, no load (median)", ...names.map((k) => scenarios[k].label)], rows);

  const countRows = [];
  for (const kind of KINDS) {
    countRows.push([
      kind,
      ...names.flatMap((k) => {
        const d = median(col(k).map((r) => r.deploy.ops.total[kind]));
        const b = median(col(k).map((r) => r.rollback.ops.total[kind]));
        return [`${d} / ${b}`];
      }),
    ]);
  }
  const counts = table(
    ["SSH operations, deploy / rollback (median)", ...names.map((k) => scenarios[k].label)],
    countRows,
  );
  const plain = col("plain")[0];
  const perHost = plain
    ? table(
        ["one plain deploy, per server", ...KINDS],
        Object.entries(plain.deploy.ops.servers).map(([server, c]) => [
          server,
          ...KINDS.map((k) => c[k] ?? 0),
        ]),
      )
    : "";
  const steps = plain
    ? table(
        ["which steps pay (one plain deploy, all servers)", "kind", "count", "total ms"],
        plain.deploy.ops.steps
          .filter((s) => s.kind !== "forward")
          .slice(0, 25)
          .map((s) => [s.what, s.kind, s.count, Math.round(s.ms)]),
      )
    : "";
  // Round trips on the critical path: what the latency added, in round trips.
  const rtt = servers.rttMs;
  const extra = (pick) => median(col("rtt").map(pick)) - median(col("plain").map(pick));
  const rtts = table(
    [`round trips on the critical path (time the ${rtt} ms RTT added ÷ ${rtt} ms)`, "round trips"],
    [
      ["deploy, whole command", (extra((r) => r.deploy.wall * 1000) / rtt).toFixed(1)],
      ["rollback, whole command", (extra((r) => r.rollback.wall * 1000) / rtt).toFixed(1)],
      [
        "deploy: connect, pack, preflight, locks",
        (extra((r) => r.deploy.segments.preflight) / rtt).toFixed(1),
      ],
      ["deploy: stage", (extra((r) => r.deploy.segments.stage) / rtt).toFixed(1)],
      ["deploy: one server out of rotation", (extra((r) => perServer(r.deploy) * 1000) / rtt).toFixed(1)],
      [
        "deploy: last server back → process exit",
        (extra((r) => r.deploy.segments.finish + r.deploy.segments.exit) / rtt).toFixed(1),
      ],
    ],
  );
  return { main, counts, perHost, steps, rtts };
}

function fleetTable(fleet) {
  const ref = median(walls(fleet.rows[0].runs));
  const rows = fleet.rows.map((row) => {
    const w = walls(row.runs);
    return [
      row.n,
      row.batch,
      row.runs.length,
      range(w),
      ms(median(row.runs.map((r) => r.segments.preflight))),
      ms(median(row.runs.map((r) => r.segments.stage))),
      secs(median(row.runs.map(perServer))),
      `${max(row.runs.map((r) => r.rssMiB)).toFixed(0)} MiB`,
      secs(median(row.runs.map((r) => r.machineCpuMs / 1000)), 1),
      secs(median(row.runs.map((r) => r.cliCpuMs / 1000)), 1),
      coresBusy(row.runs),
      x(median(w) / ref),
    ];
  });
  return table(
    [
      "servers",
      "batch size",
      "runs",
      "deploy, median (min–max)",
      "connect + preflight",
      "stage",
      "out of rotation",
      "peak RSS",
      "CPU, whole machine",
      "CPU, the CLI",
      "cores busy",
      "vs 3 servers",
    ],
    rows,
  );
}

/**
 * What the fleet ratios measure on this machine: every server is a set of processes on the same
 * cores as the CLI, so a deploy's server-side CPU (sshd, shells, PM2's programs, the app's start)
 * adds up across the fleet where real servers each bring their own.
 */
function fleetFloor(fleet, cores) {
  const big = fleet.rows.at(-1);
  const perServer = median(big.runs.map((r) => (r.machineCpuMs - r.cliCpuMs) / 1000 / big.n));
  const floor = (perServer * big.n) / cores;
  if (!Number.isFinite(floor)) return "";
  return `Each server's part of a deploy costs ${secs(perServer)} of CPU here (the ${big.n}-server deploy's CPU on the whole machine, less the CLI's, per server): on this machine's ${cores} cores, ${big.n} servers cannot be deployed in less than ${secs(floor, 1)} whatever the CLI does, and "cores busy" near ${cores} says a deploy was bound by it. The ratios against 3 servers measure that sum, not nexus: on a real fleet each server's part runs on its own CPU, and the CLI's own CPU (the column beside) is what grows with the fleet.`;
}

/** The machine's CPU time over the wall time, median: how many of its cores the deploy kept busy. */
function coresBusy(runs) {
  const busy = median(runs.map((r) => r.machineCpuMs / 1000 / r.wall));
  return Number.isFinite(busy) ? busy.toFixed(2) : "–";
}

function render(data) {
  const targets = targetsOf(data);
  const m = data.machine;
  const parts = [
    "# Benchmarks: real servers and fleets",
    "",
    `Generated by \`node scripts/bench-servers.mjs\` (part of \`npm run bench\`) on ${data.started}; the measurements took ${Math.round(data.seconds)} s. Do not edit by hand (\`--render\` redraws it from the last run's data).`,
    "",
    "The bench's sandbox (`.sandbox-bench`, 127.0.9.x, loopback only) with no load: what real servers add to the",
    "loopback figures of docs/benchmarks.md. A server's login shell may take a while to start (a `~/.bashrc`",
    "loading nvm, pyenv or conda: 0.2–0.6 s), paid by every command sshd starts; and real servers are",
    "round trips away. Each ratio compares measurements of the same run. All hosts share the machine's",
    `${m.cores} cores with the CLI (and, on this machine, with other work: load average ${m.loadAverage?.map((l) => l.toFixed(2)).join(" at start, ")} at end), so`,
    "figures move with the load; the counts do not.",
    "",
    "## Targets",
    "",
    table(
      ["", "target", "measured", "met"],
      targets.map((t) => [t.what, t.target, t.measured, t.met ? "yes" : "**no**"]),
    ),
    "",
  ];
  if (data.servers) {
    const t = scenarioTables(data.servers);
    parts.push(
      "## A slow login shell, and round trips",
      "",
      `3 servers, batch 1, ${data.servers.scenarios.plain.runs.length} deploys and rollbacks per scenario, the scenarios interleaved run by run. The ${data.servers.rttMs} ms round trip comes from a TCP proxy in front of each sshd (scripts/bench/latency-proxy.mjs) that passes every chunk on ${data.servers.rttMs / 2} ms later in each direction (measured: ${data.servers.measuredRttMs.toFixed(1)} ms per round trip through one, median of one-byte echoes). The slow login shell is \`sleep ${data.servers.loginDelay}\` in each host's \`~/.bashrc\`, which Debian's bash reads for every command sshd runs.`,
      "",
      t.main,
      "",
      "What each command opened (NEXUS_SSH_TRACE): `connect` an SSH handshake; `channel` an exec channel, one login-shell start on the server and two round trips before the command runs; `shell` one exchange with the server's remote shell (one round trip, no shell start); `sftp` an SFTP request (an upload's pipelined writes count as one); `forward` a forwarded connection (health probes through the SSH connection: a gate's probes share one kept connection; each attempt while the new process does not listen yet is one, refused).",
      "",
      t.counts,
      "",
      t.perHost,
      "",
      t.steps,
      "",
      t.rtts,
      "",
    );
  }
  if (data.bastion) {
    const b = data.bastion.scenarios;
    const cell = (k, pick) => range(walls(b[k].runs.map(pick)));
    parts.push(
      "## Through a bastion",
      "",
      "3 servers, batch 1, on a sandbox started with `--bastion` whose app hosts, for this comparison only, also take direct logins: the same deploy and rollback directly and through the jump host (one SSH connection to it for the command, a channel through it per server), interleaved.",
      "",
      table(
        ["3 servers (median, min–max)", "direct", "through the bastion"],
        [
          ["deploy", cell("direct", (r) => r.deploy), cell("bastion", (r) => r.deploy)],
          ["rollback", cell("direct", (r) => r.rollback), cell("bastion", (r) => r.rollback)],
          [
            "SSH handshakes per deploy",
            median(b.direct.runs.map((r) => r.deploy.ops.total.connect)),
            median(b.bastion.runs.map((r) => r.deploy.ops.total.connect)),
          ],
        ],
      ),
      "",
    );
  }
  if (data.fleet) {
    const f = data.fleet;
    parts.push(
      "## Fleets",
      "",
      `One sandbox of ${f.hosts} servers (each its own sshd, PM2 and app), deploying to its first 3, 12 and ${f.hosts}; no load. The first deploy (npm ci on each server) took ${f.warmSeconds.toFixed(0)} s and is not counted.`,
      "",
      fleetTable(f),
      "",
      fleetFloor(f, data.machine.cores),
      "",
      `\`nexus status\` on ${f.hosts} servers: ${secs(median(f.status.map((s) => s.wall)))} (median of ${f.status.length}; exit codes ${f.status.map((s) => s.code).join(", ")}), ${median(f.status.map((s) => s.ops.channel))} exec channels, ${median(f.status.map((s) => s.ops.shell))} shell exchanges.`,
      "",
    );
  }
  const markdown = `${parts.join("\n").trimEnd()}\n`;
  writeFileSync(path.join(ROOT, "docs", "benchmarks-servers.md"), markdown);
  process.stdout.write(`${markdown}\nwrote docs/benchmarks-servers.md\n`);
}

const entry = process.argv.includes("--render")
  ? async () => render(JSON.parse(readFileSync(LAST_RUN, "utf8")))
  : main;
entry().catch((error) => {
  process.stderr.write(`bench-servers failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
