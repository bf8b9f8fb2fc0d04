import {
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { Agent, request } from "undici";
import { sandboxDeployConfig } from "../../src/sandbox/deploy-config.js";
import { PROJECT_ROOT, sandboxInfo, type TestSandboxInfo } from "./sandbox-env.js";

export const APP_NAME = "nexus-app";
export const DEPLOY_PATH = `~/apps/${APP_NAME}`;

/** The stage's install lines of a command's output, one per server. */
export function installLines(output: string): string[] {
  return output.split("\n").filter((line) => /install ok/.test(line));
}

export function fixture(name: string): string {
  return path.join(PROJECT_ROOT, "fixtures", name);
}

/** A deploy config for the test sandbox, written to a temp dir; `overrides` are merged on top. */
export function writeConfig(
  overrides: Record<string, unknown> = {},
  info: TestSandboxInfo = sandboxInfo(),
): string {
  const base = deepMerge(sandboxDeployConfig(info, { appRoot: fixture("app"), appName: APP_NAME }), {
    pm2: { env: { NODE_ENV: "production", SECRET_TOKEN: "s3cr3t-do-not-print" } },
    balancer: { drainTimeout: "5s" },
    health: { interval: "150ms", deadline: "15s", passes: 3 },
  });
  const merged = deepMerge(base, overrides);
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-e2e-"));
  const file = path.join(dir, "deploy.config.json");
  writeFileSync(file, JSON.stringify(merged, null, 2));
  return file;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const current = out[key];
    out[key] =
      value &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      current &&
      typeof current === "object" &&
      !Array.isArray(current)
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export interface NexusRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  all: string;
}

/** Runs the built CLI as a user would, with no terminal (plain output). */
export async function nexus(
  args: string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    /** Exactly this environment, instead of ours plus CI=true NO_COLOR=1 plus `env`. */
    replaceEnv?: Record<string, string | undefined>;
    /** The hang guard, for a command longer than the tests' usual (the 50-server deploy). */
    timeout?: number;
  } = {},
): Promise<NexusRun> {
  const result = await execa("node", [path.join(PROJECT_ROOT, "bin", "nexus.js"), ...args], {
    reject: false,
    all: true,
    cwd: options.cwd ?? PROJECT_ROOT,
    ...(options.replaceEnv
      ? { extendEnv: false, env: options.replaceEnv }
      : { env: { CI: "true", NO_COLOR: "1", ...options.env } }),
    // Under the tests' 180 s: a CLI that hangs is stopped (SIGTERM: it restores what it holds)
    // before its test gives up, not left running against the shared sandbox for the next test.
    timeout: options.timeout ?? 150_000,
  });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: result.stdout,
    stderr: result.stderr,
    all: result.all ?? "",
  };
}

/**
 * Starts the CLI and sends it `signal` once a line of its plain output matches `when`. Resolves
 * with how it ended.
 */
export async function interruptAt(args: string[], when: RegExp, signal: NodeJS.Signals = "SIGINT") {
  const child = execa("node", [path.join(PROJECT_ROOT, "bin", "nexus.js"), ...args], {
    reject: false,
    all: true,
    env: { CI: "true", NO_COLOR: "1" },
    timeout: 180_000,
    // execa follows its own SIGTERM with a SIGKILL 5 s later: on a loaded machine that killed the
    // CLI in the middle of the restore this test waits for.
    forceKillAfterDelay: false,
  });
  let sent = false;
  child.stderr?.on("data", (chunk: Buffer) => {
    if (!sent && when.test(chunk.toString())) {
      sent = true;
      child.kill(signal);
    }
  });
  const result = await child;
  return { exitCode: result.exitCode ?? -1, all: result.all ?? "", sent };
}

export function uniqueRelease(tag: string): string {
  return `${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}Z-${tag}-${Math.random().toString(16).slice(2, 6)}`;
}

export function hostHome(name: string, info: TestSandboxInfo = sandboxInfo()): string {
  const host = info.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no sandbox host ${name}`);
  return host.home;
}

export function deployDir(name: string): string {
  return path.join(hostHome(name), "apps", APP_NAME);
}

export function currentRelease(name: string): string | undefined {
  const link = path.join(deployDir(name), "current");
  if (!existsSync(link)) return undefined;
  return path.basename(readlinkSync(link));
}

export function releaseOnDisk(name: string, id: string): boolean {
  return existsSync(path.join(deployDir(name), "releases", id));
}

export function upstreamFilePath(info: TestSandboxInfo = sandboxInfo()): string {
  if (path.isAbsolute(info.lb.upstreamFile)) return info.lb.upstreamFile;
  const lbHome = hostHome(info.lb.host, info);
  return path.join(lbHome, info.lb.upstreamFile.replace(/^~\//, ""));
}

/** The sandbox Nginx's main config (beside the upstream file; root's when hosts log in as the deploy user). */
export function nginxConfPath(info: TestSandboxInfo = sandboxInfo()): string {
  return path.join(path.dirname(upstreamFilePath(info)), "nginx.conf");
}

/**
 * Files a test plants in a host's home are created by the test process (root in CI): hand them
 * to the host's login user, as if that user had written them.
 */
export function giveToHostUser(name: string, ...files: string[]): void {
  const { uid, gid } = hostUser(name);
  for (const file of files) chownSync(file, uid, gid);
}

/** uid/gid of a host's login user (the owner of its home), for child_process options. */
export function hostUser(name: string): { uid: number; gid: number } {
  const home = statSync(hostHome(name));
  return { uid: home.uid, gid: home.gid };
}

export function readUpstream(): string {
  return readFileSync(upstreamFilePath(), "utf8");
}

export interface LbAnswer {
  status: number;
  server?: string;
  release?: string;
}

/** Sends `count` GETs through the load balancer on fresh connections; returns who answered. */
export async function throughLb(count: number, pathname = "/"): Promise<LbAnswer[]> {
  const info = sandboxInfo();
  const answers: LbAnswer[] = [];
  for (let i = 0; i < count; i++) {
    const dispatcher = new Agent({ pipelining: 0 });
    try {
      const response = await request(`${info.lb.url}${pathname}`, {
        dispatcher,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      const text = await response.body.text();
      let body: { server?: string; release?: string } = {};
      try {
        body = JSON.parse(text);
      } catch {}
      answers.push({ status: response.statusCode, server: body.server, release: body.release });
    } finally {
      await dispatcher.close();
    }
  }
  return answers;
}

/**
 * Requests through the balancer, `count` at a time, until each of `servers` has answered one (at
 * most 10 rounds): a server put back by an Nginx reload gets requests from the new workers at
 * once, while the old ones (told to quit 100 ms later) take new connections with the old list.
 */
export async function throughLbUntilEach(servers: readonly string[], count = 15): Promise<LbAnswer[]> {
  const answers: LbAnswer[] = [];
  for (let round = 0; round < 10; round++) {
    answers.push(...(await throughLb(count)));
    if (servers.every((name) => answers.some((a) => a.server === name))) break;
  }
  return answers;
}

export function copyFixture(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `nexus-app-${name}-`));
  cpSync(fixture(name), dir, { recursive: true });
  return dir;
}

export const SERVERS = ["nexus-alpha", "nexus-beta", "nexus-gamma"];

export function releasesOnDisk(name: string): string[] {
  const dir = path.join(deployDir(name), "releases");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort();
}

/** Everything a command could change on the fleet, for before/after comparisons. */
export function fleetSnapshot(): string {
  const hosts = SERVERS.map((name) => {
    const dir = deployDir(name);
    const files = existsSync(dir) ? listTree(dir) : [];
    return { name, current: currentRelease(name), files, pm2: pm2Pid(name) };
  });
  return JSON.stringify({ upstream: readUpstream(), hosts }, null, 1);
}

function listTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const rel = `${prefix}${entry.name}`;
    const full = path.join(dir, entry.name);
    const stat = lstatSync(full);
    out.push(
      `${rel} ${stat.isSymbolicLink() ? `-> ${readlinkSync(full)}` : stat.isDirectory() ? "/" : `${stat.size} ${stat.mtimeMs}`}`,
    );
    if (entry.isDirectory()) out.push(...listTree(full, `${rel}/`));
  }
  return out;
}

function pm2Pid(name: string): string | undefined {
  const file = path.join(hostHome(name), ".pm2", "pids");
  if (!existsSync(file)) return undefined;
  return readdirSync(file).sort().join(",");
}

/** Writes a lock file on a host as another process would have left it. */
export function plantLock(name: string, holder: Record<string, unknown>): void {
  const dir = path.join(deployDir(name), ".nexus");
  const created = mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "lock"), `${JSON.stringify(holder)}\n`);
  const made: string[] = [];
  if (created) for (let d = dir; d.length >= created.length; d = path.dirname(d)) made.push(d);
  giveToHostUser(name, ...made, path.join(dir, "lock"));
}

export function lockOn(name: string): string | undefined {
  const file = path.join(deployDir(name), ".nexus", "lock");
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

/**
 * The fleet as a deploy of `release` leaves it: every server on it and in rotation, no lock, no
 * journal, and the balancer's answers all 200 from it.
 */
export async function stillServing(release: string): Promise<boolean> {
  const settled =
    SERVERS.every((name) => currentRelease(name) === release && lockOn(name) === undefined) &&
    SERVERS.every((name) => !existsSync(path.join(deployDir(name), ".nexus", "journal.json"))) &&
    !/\bdown;/.test(readUpstream());
  if (!settled) return false;
  const answers = await throughLb(12);
  return answers.every((a) => a.status === 200 && a.release === release);
}

/** The events of a `--json` run: its stdout's JSON lines. */
export function jsonEvents(stdout: string): Record<string, any>[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** Resolves once something accepts connections on host:port (10 s at most). */
export async function waitForPort(host: string, port: number): Promise<void> {
  const { connect } = await import("node:net");
  for (let i = 0; i < 200; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}
