#!/usr/bin/env node
// Transfer benchmark (not a test): `npm run build && node scripts/bench-transfer.mjs`.
//
// On a one-host sandbox of its own (.sandbox-bench-transfer, 127.0.8.x), with a generated app of
// ~200 MB (JS-like text in many files, plus some incompressible binary assets):
//   pack    MB/s of packApp (dist/artifact/pack.js) vs GNU `tar czf` of the same directory
//   upload  MB/s of SshSession.upload (SFTP fastPut) vs OpenSSH `scp` of the same file, same host
//   rss     peak RSS of `node bin/nexus.js deploy` of that app (VmHWM, polled, plus /usr/bin/time)
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

/** Peak RSS (VmHWM) of a deploy of the app, polled from /proc while it runs. */
async function measureDeployRss(info, appDir, scratch) {
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
  const args = [path.join(ROOT, "bin", "nexus.js"), "-c", config, "deploy"];
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

  const deploy = await measureDeployRss(info, appDir, scratch);

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
    [
      "deploy peak RSS (MB)",
      deploy.peakMB.toFixed(0),
      "",
      "",
      `≤ ${TARGETS.rssMB}`,
      deploy.peakMB <= TARGETS.rssMB,
    ],
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
  const context = `app ${(app.bytes / MB).toFixed(0)} MB (${app.files} JS files + binary assets), artifact ${artifactMB.toFixed(1)} MB; best of ${ROUNDS}; ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ""}; Node ${process.version}; loopback sandbox`;
  process.stdout.write(`\n${text.join("\n")}\n\n${context}\n`);
  if (deploy.upload) process.stdout.write(`deploy's own upload step: ${deploy.upload}\n`);
  process.stdout.write(`deploy peak RSS (MB) reached by the end of each phase: ${deploy.phases}\n`);

  writeFileSync(
    path.join(ROOT, "docs", "benchmarks-transfer.md"),
    [
      "# Transfer benchmark",
      "",
      "Generated by `node scripts/bench-transfer.mjs` (after `npm run build`); numbers from the last run.",
      "",
      "```",
      ...text,
      "```",
      "",
      `${context}.`,
      "",
      `Deploy peak RSS (MB) reached by the end of each phase: ${deploy.phases}.`,
      "",
      "- **pack**: `packApp` (node-tar + zlib gzip level 6, streamed to disk while hashed) against",
      "  `tar czf` (GNU tar piping into gzip -6) of the same directory, both in MB of app per second.",
      "- **upload**: `SshSession.upload` (ssh2 SFTP `fastPut`, parallel writes into `.part`, then a",
      "  rename) against OpenSSH `scp` (SFTP protocol since OpenSSH 9.0) of the same artifact to the",
      "  same sandbox host, in MB of artifact per second. Loopback: both are bound by CPU (cipher and",
      "  SFTP framing), not by a network.",
      "- **deploy peak RSS**: the highest VmHWM of the `node bin/nexus.js deploy` process (and",
      "  `/usr/bin/time -v` where present) while it packs, uploads and rolls out the app to one host:",
      "  the artifact never sits whole in memory.",
      "",
      "## What sets the deploy's peak RSS",
      "",
      "Found by sampling `process.memoryUsage()` and VmHWM through a deploy of this app (Node 20,",
      "2 CPUs); the levers are outside the transfer code:",
      "",
      "- **Start-up, ~85 MB** before any work: the CLI's modules (measured one by one: undici ~20 MB,",
      "  execa ~16, zod ~14, ssh2 ~14, ora ~13, tar ~6, chalk ~5, commander ~4). Lazy imports of",
      "  what a command does not use would cut this.",
      "- **Packing, +~100 MB, kept**: the JS heap in use stays under 35 MB and Buffers under 70 MB;",
      "  the rest is V8's young generation growing to its maximum under packing's allocation rate",
      "  (`node --max-semi-space-size=2` saves 30–40 MB) and node-tar reading up to 4 files of up to",
      "  16 MiB each ahead (`jobs: 2, maxReadSize: 1 MiB` in `tar.create` saves ~25 MB at the same",
      "  speed when packing alone), plus glibc arenas (`MALLOC_ARENA_MAX=2`).",
      "- **The first health probe, +20–35 MB for a moment**: undici compiling its llhttp WebAssembly",
      "  parser, on top of what packing left.",
      "- **Upload, ~+2 MB**: `fastPut` keeps 16 writes of 128 KiB in flight (2 MiB, the SSH channel",
      "  window); 64 × 255 KiB cost +20 MB and was no faster.",
      "",
      "With the two packing changes, `--max-semi-space-size=2` and `MALLOC_ARENA_MAX=2` together, the",
      "same deploy peaked at 152–158 MB.",
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
