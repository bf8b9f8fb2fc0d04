// The benchmark's own sandbox (.sandbox-bench on 127.0.9.x), its deploy configs, and the machine.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const APP_NAME = "nexus-app";
/** BENCH_IP_PREFIX moves it (two benches on one machine must not share addresses). */
export const IP_PREFIX = process.env.BENCH_IP_PREFIX ?? "127.0.9.";

export function sandboxDir(root) {
  return path.join(root, ".sandbox-bench");
}

async function sandboxModule(root) {
  return import(pathToFileURL(path.join(root, "dist", "sandbox", "index.js")).href);
}

/** A fresh sandbox with `hosts` app servers: whatever a previous run left is stopped and wiped first. */
export async function sandboxUp(root, hosts, extra = {}) {
  const { sandboxUp: up, sandboxDown: down } = await sandboxModule(root);
  const dir = sandboxDir(root);
  await down(dir).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  // HAProxy beside Nginx: the same deploys are measured through either balancer.
  await up({ dir, ipPrefix: IP_PREFIX, hosts, balancer: "haproxy", ...extra });
  return JSON.parse(readFileSync(path.join(dir, "sandbox.json"), "utf8"));
}

export async function sandboxDown(root) {
  const { sandboxDown: down } = await sandboxModule(root);
  await down(sandboxDir(root));
}

/** A deploy config for the sandbox (src/sandbox/deploy-config.ts), nexus defaults otherwise. */
export async function writeConfig(root, info, dir, { batchSize = 1, name = "deploy" } = {}) {
  const { sandboxDeployConfig } = await sandboxModule(root);
  const config = {
    ...sandboxDeployConfig(info, { appRoot: path.join(root, "fixtures", "app"), appName: APP_NAME }),
    pm2: { env: { NODE_ENV: "production" } },
    rolling: { batchSize },
  };
  const file = path.join(dir, `${name}.config.json`);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** The same deploy config with the sandbox's HAProxy as the balancer (src/sandbox/haproxy.ts). */
export async function writeHaproxyConfig(root, info, dir) {
  const { haproxyBalancerEntry } = await import(
    pathToFileURL(path.join(root, "dist", "sandbox", "haproxy.js")).href
  );
  const file = await writeConfig(root, info, dir, { name: "haproxy" });
  const config = JSON.parse(readFileSync(file, "utf8"));
  config.balancer = haproxyBalancerEntry(info.haproxy);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** `nginx -s reload` on the balancer host: new workers, with no failure counts (max_fails) from before. */
export async function reloadBalancer(info) {
  await run("ssh", ["-F", info.sshConfig, "-o", "BatchMode=yes", info.lb.host, info.lb.reloadCommand], {
    timeout: 30_000,
  });
}

/** Median wall time (ms) of each command over ssh to the first server, `times` runs each. */
export async function timeRemote(info, commands, times) {
  const host = info.hosts[0].name;
  const out = {};
  for (const command of commands) {
    const samples = [];
    for (let i = 0; i < times; i++) {
      const start = performance.now();
      await run("ssh", ["-F", info.sshConfig, "-o", "BatchMode=yes", host, command], { timeout: 30_000 });
      samples.push(performance.now() - start);
    }
    samples.sort((a, b) => a - b);
    out[command] = samples[Math.floor(samples.length / 2)];
  }
  return out;
}

async function versionOf(command, args) {
  try {
    const { stdout, stderr } = await run(command, args, { timeout: 10_000 });
    return `${stdout}${stderr}`.trim().split("\n")[0];
  } catch {
    return "unknown";
  }
}

export async function machineInfo(root) {
  const cpus = os.cpus();
  const pkg = (name) => {
    try {
      return JSON.parse(readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version;
    } catch {
      return "unknown";
    }
  };
  let distro = "";
  try {
    distro = /PRETTY_NAME="([^"]*)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {}
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model?.replace(/\s+/g, " ").trim() ?? "unknown",
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    os: `${distro || os.type()} (${os.platform()} ${os.release()}, ${os.arch()})`,
    nginx: (await versionOf("nginx", ["-v"])).replace(/^nginx version:\s*/, ""),
    openssh: await versionOf("ssh", ["-V"]),
    pm2: pkg("pm2"),
    autocannon: pkg("autocannon"),
  };
}
