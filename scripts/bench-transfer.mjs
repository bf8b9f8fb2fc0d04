#!/usr/bin/env node
// Transfer benchmark (not a test): `npm run build && npm run bundle && node scripts/bench-transfer.mjs`.
//
// On a one-host sandbox of its own (.sandbox-bench-transfer, 127.0.8.x), with a generated app of
// ~200 MB (JS-like text in many files, plus some incompressible binary assets):
//   pack    MB/s of packApp (dist/artifact/pack.js) vs GNU `tar czf` of the same directory
//   upload  MB/s of SshSession.upload (SFTP fastPut) vs OpenSSH `scp` of the same file, same host
//   rss     peak RSS of a deploy of that app by the CLI, VmHWM polled (plus /usr/bin/time): the
//           bundle users run (`node bundle/nexus.mjs`, which must be fresh: `npm run bundle`) and
//           the compiled sources (`node bin/nexus.js`); the highest of BENCH_ROUNDS deploys each
// Both sides of each ratio are measured in this run, alternating, best of BENCH_ROUNDS (default 2).
// Prints a table and writes docs/benchmarks-transfer.md.
//
// Env: BENCH_APP_MB (default 200), BENCH_ROUNDS (default 2), BENCH_KEEP=1 keeps the sandbox up,
// BENCH_APP_DIR=<dir> generates the app there and keeps it (reused by the next run).
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "dist");
if (!existsSync(path.join(DIST, "artifact", "pack.js"))) {
  console.error("dist/ is missing: run `npm run build` first");
  process.exit(2);
}
const { packApp } = await import(path.join(DIST, "artifact", "pack.js"));
const { SshSession } = await import(path.join(DIST, "ssh", "session.js"));
const { HostKeyCheck, readKnownHosts } = await import(path.join(DIST, "ssh", "host-keys.js"));
const { sandboxUp, sandboxDown, sandboxDeployConfig } = await import(path.join(DIST, "sandbox", "index.js"));
const { BUNDLE, bundleIsFresh } = await import(path.join(ROOT, "scripts", "bundle.mjs"));
if (!(await bundleIsFresh())) {
  console.error("bundle/nexus.mjs is stale: run `npm run bundle` first (the bench measures what users run)");
  process.exit(2);
}
/** The two ways to run the CLI: what users run, and the compiled sources. */
const ENTRIES = [
  // What users run (the npm package ships only bundle/, and the Action runs it): the RSS target.
  { name: "bundle", label: "node bundle/nexus.mjs", file: BUNDLE, shipped: true },
  // The compiled sources the tests run: reported beside it, not shipped.
  { name: "dist", label: "node bin/nexus.js", file: path.join(ROOT, "bin", "nexus.js"), shipped: false },
];

const APP_MB = Number(process.env.BENCH_APP_MB ?? 200);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const SANDBOX_DIR = path.join(ROOT, ".sandbox-bench-transfer");
const PREFIX = "127.0.8.";
const TARGETS = { pack: 0.8, upload: 0.8, rssMB: 150 };
const MB = 1024 * 1024;

function log(message) {
  process.stderr.write(`bench-transfer: ${message}\n`);
}

// --- the app --------------------------------------------------------------------------------

/** Deterministic pseudo-random numbers, so every run packs the same bytes. */
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** ~APP_MB of app: 80% JS-like source in ~20 KB files (gzip ~4:1), 20% incompressible assets. */
function generateApp(dir) {
  cpSync(path.join(ROOT, "fixtures", "app"), dir, { recursive: true });
  const random = prng(42);
  const words = Array.from({ length: 4000 }, () =>
    Array.from({ length: 3 + Math.floor(random() * 9) }, () =>
      String.fromCharCode(97 + Math.floor(random() * 26)),
    ).join(""),
  );
  const pick = () => words[Math.floor(random() * words.length)];
  const textBytes = APP_MB * 0.8 * MB;
  let written = 0;
  let file = 0;
  while (written < textBytes) {
    const lines = [];
    let size = 0;
    const target = 8_000 + Math.floor(random() * 24_000);
    while (size < target) {
      const line =
        random() < 0.15
          ? `// ${pick()} ${pick()} ${pick()} ${pick()} ${pick()}: ${pick()} the ${pick()} of ${pick()}`
          : `  const ${pick()}_${file} = ${pick()}.${pick()}(${pick()}, ${Math.floor(random() * 10000)}, "${pick()}-${pick()}");`;
      lines.push(line);
      size += line.length + 1;
    }
    const text = `"use strict";\nmodule.exports = function ${pick()}() {\n${lines.join("\n")}\n};\n`;
    const sub = path.join(dir, "lib", `pkg-${Math.floor(file / 100)}`);
    if (file % 100 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `${pick()}-${file}.js`), text);
    written += text.length;
    file++;
  }
  const assets = path.join(dir, "public", "assets");
  mkdirSync(assets, { recursive: true });
  const binaryBytes = APP_MB * 0.2 * MB;
  for (let i = 0; i * 4 * MB < binaryBytes; i++) {
    writeFileSync(
      path.join(assets, `image-${i}.webp`),
      randomBytes(Math.min(4 * MB, binaryBytes - i * 4 * MB)),
    );
  }
  return { files: file, bytes: dirSize(dir) };
}

function dirSize(dir) {
  let total = 0;
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else total += statSync(full).size;
    }
  };
  walk(dir);
  return total;
}

function countFiles(dir) {
  let count = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    count += entry.isDirectory() ? countFiles(path.join(dir, entry.name)) : 1;
  }
  return count;
}

async function timed(work) {
  const started = process.hrtime.bigint();
  const result = await work();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, result };
}

function best(samples) {
  return Math.min(...samples);
}

// --- measurements ---------------------------------------------------------------------------

async function measurePack(appDir, appBytes, scratch) {
  const nexus = [];
  const tar = [];
  for (let i = 0; i < ROUNDS; i++) {
    const packed = await timed(() => packApp(appDir));
    nexus.push(packed.seconds);
    const artifactBytes = packed.result.bytes;
    await packed.result.dispose();
    const out = path.join(scratch, "gnu.tar.gz");
    // The same content as the artifact: node_modules and .git are excluded from both.
    const gnu = await timed(() =>
      run("tar", ["czf", out, "--exclude=./node_modules", "--exclude=./.git", "-C", appDir, "."]),
    );
    tar.push(gnu.seconds);
    log(
      `pack round ${i + 1}: nexus ${(appBytes / MB / packed.seconds).toFixed(1)} MB/s (${(artifactBytes / MB).toFixed(1)} MB out), tar czf ${(appBytes / MB / gnu.seconds).toFixed(1)} MB/s (${(statSync(out).size / MB).toFixed(1)} MB out)`,
    );
  }
  return { nexus: appBytes / MB / best(nexus), tar: appBytes / MB / best(tar) };
}

async function measureUpload(info, file, bytes) {
  const host = info.hosts[0];
  const session = await SshSession.connect({
    server: host.name,
    host: host.address,
    port: host.sshPort,
    username: info.user,
    privateKey: readFileSync(info.clientKey),
    readyTimeout: 20_000,
    keepaliveInterval: 5_000,
    hostKey: new HostKeyCheck(
      readKnownHosts(info.knownHosts),
      host.address,
      host.sshPort,
      "strict",
      info.knownHosts,
    ),
  });
  const remote = path.join(host.home, "bench-upload.tar.gz");
  const nexus = [];
  const scp = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      rmSync(remote, { force: true });
      const up = await timed(() => session.upload(file, remote));
      if (statSync(remote).size !== bytes) throw new Error("upload size mismatch");
      nexus.push(up.seconds);
      rmSync(remote, { force: true });
      const copy = await timed(() =>
        run("scp", [
          "-q",
          "-i",
          info.clientKey,
          "-o",
          `UserKnownHostsFile=${info.knownHosts}`,
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          "IdentitiesOnly=yes",
          "-P",
          String(host.sshPort),
          file,
          `${info.user}@${host.address}:${remote}`,
        ]),
      );
      if (statSync(remote).size !== bytes) throw new Error("scp size mismatch");
      scp.push(copy.seconds);
      log(
        `upload round ${i + 1}: nexus ${(bytes / MB / up.seconds).toFixed(1)} MB/s, scp ${(bytes / MB / copy.seconds).toFixed(1)} MB/s`,
      );
    }
  } finally {
    rmSync(remote, { force: true });
    session.close();
  }
  return { nexus: bytes / MB / best(nexus), scp: bytes / MB / best(scp) };
}

/** Peak RSS of `node <entry> --version` (/usr/bin/time): the CLI's modules, before any work. */
async function measureStartupRss(entry) {
  if (!existsSync("/usr/bin/time")) return undefined;
  let peakKb = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const { stderr } = await run("/usr/bin/time", ["-f", "%M", process.execPath, entry, "--version"]);
    peakKb = Math.max(peakKb, Number(stderr.trim().split("\n").at(-1)));
  }
  return peakKb / 1024;
}

/** Peak RSS (VmHWM) of a deploy of the app by `node <entry>`, polled from /proc while it runs. */
async function measureDeployRss(info, appDir, scratch, entry) {
  const config = path.join(scratch, "deploy.config.json");
  writeFileSync(
    config,
    JSON.stringify(
      {
        ...sandboxDeployConfig(info, { appRoot: appDir, appName: "bench-app", hosts: 1 }),
        health: { interval: "150ms", deadline: "30s", passes: 2 },
      },
      null,
      2,
    ),
  );
  const useTime = existsSync("/usr/bin/time");
  const args = [entry, "-c", config, "deploy"];
  const child = useTime
    ? spawn("/usr/bin/time", ["-v", process.execPath, ...args], {
        env: { ...process.env, CI: "1", NO_COLOR: "1" },
      })
    : spawn(process.execPath, args, { env: { ...process.env, CI: "1", NO_COLOR: "1" } });
  let output = "";
  let peakKb = 0;
  const sample = () => {
    for (const pid of [child.pid, ...childrenOf(child.pid)]) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, "utf8");
        if (!/^Name:\s+node/m.test(status)) continue;
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peakKb = Math.max(peakKb, hwm);
      } catch {}
    }
  };
  // The peak so far when each phase ends, to tell which one sets it.
  const phases = [];
  const markers = [
    ["start-up", /== pack:/],
    ["pack", /artifact [\d.]+ MB/],
    ["upload", /upload ok/],
    ["extract + install", /install ok/],
    ["restart + gate", /gate ok/],
    ["finish", /done \(release/],
  ];
  const onData = (d) => {
    output += d;
    sample();
    for (const [name, pattern] of markers) {
      if (!phases.some((p) => p.name === name) && pattern.test(output))
        phases.push({ name, peakMB: peakKb / 1024 });
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const poll = setInterval(sample, 20);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  clearInterval(poll);
  if (code !== 0)
    throw new Error(
      `deploy failed (exit ${code}):\n${output
        .split("\n")
        .filter((line) => !line.startsWith("\t"))
        .slice(-40)
        .join("\n")}`,
    );
  const timeKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(output)?.[1] ?? 0);
  const upload = /upload ok \(([^)]+)\): ([^\n]+)/.exec(output);
  return {
    peakMB: Math.max(peakKb, timeKb) / 1024,
    upload: upload ? `${upload[2]} (${upload[1]})` : "",
    phases: phases.map((p) => `${p.name} ${p.peakMB.toFixed(0)}`).join(", "),
  };
}

/** ROUNDS deploys by each entry, alternating; per entry the highest peak and that run's phases. */
async function measureDeploys(info, appDir, scratch) {
  const results = Object.fromEntries(ENTRIES.map((e) => [e.name, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const entry of ENTRIES) {
      const deploy = await measureDeployRss(info, appDir, scratch, entry.file);
      results[entry.name].push(deploy);
      log(
        `deploy round ${i + 1}, ${entry.label}: peak RSS ${deploy.peakMB.toFixed(0)} MB (${deploy.phases})`,
      );
    }
  }
  return Object.fromEntries(
    Object.entries(results).map(([name, runs]) => [
      name,
      runs.reduce((worst, run) => (run.peakMB > worst.peakMB ? run : worst)),
    ]),
  );
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// --- main -------------------------------------------------------------------------------------

const scratch = mkdtempSync(path.join(os.tmpdir(), "nexus-bench-transfer-"));
// BENCH_APP_DIR: generate the app there once and keep it (or reuse it) across runs.
const appDir = process.env.BENCH_APP_DIR
  ? path.resolve(process.env.BENCH_APP_DIR)
  : path.join(scratch, "app");
let info;
try {
  const reuse = existsSync(path.join(appDir, "lib"));
  log(`${reuse ? "reusing" : `generating a ${APP_MB} MB app in`} ${appDir}`);
  const app = reuse
    ? { files: countFiles(path.join(appDir, "lib")), bytes: dirSize(appDir) }
    : generateApp(appDir);
  log(`${(app.bytes / MB).toFixed(1)} MB in ${app.files} generated files`);

  const pack = await measurePack(appDir, app.bytes, scratch);

  await sandboxDown(SANDBOX_DIR).catch(() => {});
  info = await sandboxUp({ dir: SANDBOX_DIR, ipPrefix: PREFIX, hosts: 1 });
  const artifact = await packApp(appDir);
  const upload = await measureUpload(info, artifact.file, artifact.bytes);
  const artifactMB = artifact.bytes / MB;
  await artifact.dispose();

  const deploys = await measureDeploys(info, appDir, scratch);
  const startup = {};
  for (const entry of ENTRIES) startup[entry.name] = await measureStartupRss(entry.file);

  const rows = [
    [
      "pack (app MB/s)",
      pack.nexus.toFixed(1),
      `GNU tar czf ${pack.tar.toFixed(1)}`,
      (pack.nexus / pack.tar).toFixed(2),
      `≥ ${TARGETS.pack}`,
      pack.nexus / pack.tar >= TARGETS.pack,
    ],
    [
      "upload (MB/s)",
      upload.nexus.toFixed(1),
      `scp ${upload.scp.toFixed(1)}`,
      (upload.nexus / upload.scp).toFixed(2),
      `≥ ${TARGETS.upload}`,
      upload.nexus / upload.scp >= TARGETS.upload,
    ],
    ...ENTRIES.map((entry) => [
      `deploy peak RSS, ${entry.name} (MB)`,
      deploys[entry.name].peakMB.toFixed(0),
      "",
      "",
      entry.shipped ? `≤ ${TARGETS.rssMB}` : "reported",
      !entry.shipped || deploys[entry.name].peakMB <= TARGETS.rssMB,
    ]),
  ];
  const header = ["measure", "nexus", "reference", "ratio", "target", "met"];
  const table = [header, ...rows.map((r) => [...r.slice(0, 5), r[5] ? "yes" : "NO"])];
  const widths = header.map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
  const text = table.map((r) =>
    r
      .map((c, i) => String(c).padEnd(widths[i]))
      .join("  ")
      .trimEnd(),
  );
  text.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const context = `app ${(app.bytes / MB).toFixed(0)} MB (${app.files} JS files + binary assets), artifact ${artifactMB.toFixed(1)} MB; pack and upload best of ${ROUNDS}, RSS the highest of ${ROUNDS} deploys; ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ""}; Node ${process.version}; loopback sandbox`;
  const phaseLines = ENTRIES.map(
    (entry) =>
      `- \`${entry.label}\`: start-up (\`--version\`) ${startup[entry.name]?.toFixed(0) ?? "n/a"}; deploy: ${deploys[entry.name].phases}`,
  );
  process.stdout.write(`\n${text.join("\n")}\n\n${context}\n`);
  if (deploys.bundle.upload) process.stdout.write(`deploy's own upload step: ${deploys.bundle.upload}\n`);
  process.stdout.write(`peak RSS (MB) reached by the end of each phase:\n${phaseLines.join("\n")}\n`);

  writeFileSync(
    path.join(ROOT, "docs", "benchmarks-transfer.md"),
    [
      "# Transfer benchmark",
      "",
      "Generated by `node scripts/bench-transfer.mjs` (after `npm run build` and `npm run bundle`); numbers from the last run.",
      "",
      "```",
      ...text,
      "```",
      "",
      `${context}.`,
      "",
      "Peak RSS (MB) reached by the end of each phase of the deploy with the highest peak:",
      "",
      ...phaseLines,
      "",
      "- **pack**: `packApp` (node-tar + zlib gzip level 6, streamed to disk while hashed) against",
      "  `tar czf` (GNU tar piping into gzip -6) of the same directory, both in MB of app per second.",
      "- **upload**: `SshSession.upload` (ssh2 SFTP `fastPut`, parallel writes into `.part`, then a",
      "  rename) against OpenSSH `scp` (SFTP protocol since OpenSSH 9.0) of the same artifact to the",
      "  same sandbox host, in MB of artifact per second. Loopback: both are bound by CPU (cipher and",
      "  SFTP framing), not by a network.",
      "- **deploy peak RSS**: the highest VmHWM of the CLI's process (and `/usr/bin/time -v` where",
      "  present) while it packs, uploads and rolls out the app to one host, the highest of the rounds:",
      "  `bundle` is `node bundle/nexus.mjs deploy`, the single file users run (npm package, Action);",
      "  `dist` is `node bin/nexus.js deploy`, the compiled sources (one module per file), which only",
      "  the tests run: reported, not a target (it varies 132–167 MB from run to run here).",
      "",
      "## What sets the deploy's peak RSS",
      "",
      "Found on this app (Node 20, 2 CPUs) by sampling `process.memoryUsage()` and VmHWM through",
      "deploys, one lever at a time. Peak RSS in MB of 2 to 4 deploys per row (issue #15: ≤ 150):",
      "",
      "| change (each row adds to the one above)                  | bundle  | dist    |",
      "| -------------------------------------------------------- | ------- | ------- |",
      "| before                                                   | 208–217 | 198–220 |",
      "| health probes on `node:http`; lazy imports               | 171–172 | 178–179 |",
      "| V8's young generation kept at its initial size           | 152–156 | 157–158 |",
      "| SFTP: 16 writes of 128 KiB in flight instead of 64 × 255 | 126–129 | 132–160 |",
      "| (tried, not kept) a tar writer of our own, not node-tar  | 119–123 | 130–138 |",
      "",
      "- **Start-up** (`nexus --version`: bundle 84 → 63–65 MB, dist 93 → 74–81; Node alone is 40): the",
      "  modules. execa, ora (on a terminal only) and the sandbox code are imported where they are used;",
      "  in the single-file bundle esbuild keeps a dynamically imported module's top level",
      "  unevaluated until then (its `__esm` wrappers), so the bundle stays one file. What a deploy needs",
      "  anyway (commander, zod and the config schema, ssh2 with its poly1305 WebAssembly, chalk) stays:",
      "  a deploy of the bundle has connected by ~80 MB. dist costs ~12 MB more than the bundle: one",
      "  module per file.",
      "- **The first health probe, +20–35 MB**: undici compiled its llhttp WebAssembly parser then, at",
      "  the deploy's peak (undici 7 has no other parser). A probe is one GET on a fresh connection, so",
      "  it now uses `node:http` with no agent (Node's native llhttp): the gate adds nothing measurable.",
      "  undici is out of the bundle (1 MB of its 3.6 MB) and stays a devDependency of the e2e tests.",
      "- **The young generation, ~20 MB at the end of packing**: under packing's and uploading's",
      "  allocation rate V8 grows its semi-spaces from 1 to 16 MB, and the Buffers that die there hold",
      "  their memory until the next scavenge. `--max-semi-space-size` is read only when V8 starts:",
      "  `v8.setFlagsFromString` of it changes nothing (measured), and users cannot pass node flags to",
      "  `nexus`. `--semi-space-growth-factor` is read at each growth, so the CLI sets it to 1 at",
      "  start-up (`cli/main.ts`): 2 × 1 MB for good, pack and upload as fast. Without it the final code",
      "  peaks at 128–129 (bundle).",
      "- **Upload, ~30 MB**: ssh2's `fastPut` read 64 chunks of 255 KiB ahead, each then copied into SFTP",
      "  and SSH packets and ciphertext. 16 × 128 KiB (2 MiB, the SSH channel's window) is as fast on",
      "  loopback; with the rest of the changes in, 64 × 255 KiB peaks at 147–154 and 8 × 64 KiB is no",
      "  lighter than 16 × 128. What the upload still adds (~15 MB over packing) is those packets:",
      "  short-lived Buffers that V8 frees at a scavenge, which it puts off until ~32 MB of them are dead",
      "  (2 × its default maximum semi-space, not a flag).",
      "- **Packing, ~23 MB at its end**: node-tar reads every file into a Buffer of its own (its `jobs`",
      "  and `maxReadSize` bound how many and how big: 2 files, 1 MiB reads), 200 MB of short-lived",
      "  Buffers for this app, up to ~30 MB of them dead at a time. A tar writer of our own reusing two",
      "  256 KiB buffers was measured (packing +17–19 MB instead of +44, the last row above) and not",
      "  kept: the bundle is under the target with node-tar, and 250 lines of archive format are not",
      "  worth 6 MB.",
      "- **Not changed**: glibc keeps what is freed in its arenas, so RSS does not fall after a phase",
      "  (`MALLOC_ARENA_MAX` is read when the process starts, not settable from it); the first health",
      "  probe and the rest of the roll-out now add nothing to the peak set by the upload.",
      "",
    ].join("\n"),
  );
  const failed = rows.filter((r) => !r[5]).length;
  if (failed > 0) log(`${failed} target(s) missed`);
} finally {
  if (info && !process.env.BENCH_KEEP)
    await sandboxDown(SANDBOX_DIR).catch((e) => log(`sandbox down: ${e.message}`));
  rmSync(scratch, { recursive: true, force: true });
}
