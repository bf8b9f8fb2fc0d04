/**
 * The surge strategy (issue 28) on the sandbox: the release starts beside the old process on the
 * other port, is gated there, the balancer switches to it, the old process drains and stops. Under
 * the keep-alive POST storm that never sends a request again, through HAProxy: not one request
 * fails, and the balancer's live state (sampled every 50 ms) shows every server up throughout.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverLines } from "../../src/balancer/haproxy/standby.js";
import { parseServersState } from "../../src/balancer/haproxy/stats.js";
import { haproxyPaths } from "../../src/sandbox/haproxy.js";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import {
  currentRelease,
  deployDir,
  fixture,
  hostHome,
  interruptAt,
  lockOn,
  nexus,
  readUpstream,
  SERVERS,
  throughLb,
  uniqueRelease,
  waitForPort,
  writeConfig,
} from "./helpers.js";
import {
  describeStorm,
  type StormSummary,
  sampleEvery,
  startPostStorm,
  summarizeStorm,
  waitForSteady,
} from "./load.js";
import { sandboxInfo } from "./sandbox-env.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const STORM_CONNECTIONS = 10;
const MAX_LOAD_SECONDS = 150;

interface AdminState {
  server: string;
  maint: boolean;
  drain: boolean;
  operational: number;
  port?: number;
}

/**
 * What HAProxy says right now, from its admin socket: each server's live line (the sandbox's
 * backend has a standby line per server, `<name>-surge`, for the switch), by the server's name.
 */
async function haproxyState(): Promise<AdminState[]> {
  const { stdout } = await run("sh", [
    "-c",
    `printf 'show servers state ${sandboxHaproxy().backend}\\n' | socat stdio "UNIX-CONNECT:$1"`,
    "sh",
    haproxyPaths(hostHome(sandboxHaproxy().host)).socket,
  ]);
  const states = parseServersState(stdout);
  return SERVERS.map((server) => {
    const live = serverLines(states, server).live;
    if (!live) throw new Error(`HAProxy has no line for ${server}: ${stdout}`);
    const { maint, drain, operational, port } = live;
    return { server, maint, drain, operational, ...(port ? { port } : {}) };
  });
}

/** The names in the server's PM2 dump (`pm2 save`): what `pm2 resurrect` starts after a reboot. */
function savedProcesses(name: string): string[] {
  const dump = JSON.parse(readFileSync(path.join(hostHome(name), ".pm2", "dump.pm2"), "utf8")) as {
    name: string;
  }[];
  return dump.map((p) => p.name);
}

/** Samples HAProxy's state every 50 ms until stopped: every sample in which a server was not up. */
function sampleCapacity(): { stop(): Promise<{ samples: number; down: string[] }> } {
  // srv_op_state 2: running (HAProxy's checks pass); no maint, no drain: in rotation.
  const sampler = sampleEvery(50, async () =>
    (await haproxyState())
      .filter((s) => s.maint || s.drain || s.operational !== 2)
      .map((s) => `${s.server} ${JSON.stringify(s)}`),
  );
  return {
    stop: async () => {
      const { samples, wrong } = await sampler.stop();
      return { samples, down: wrong.flat() };
    },
  };
}

function livePort(server: string): number | undefined {
  const file = path.join(deployDir(server), ".nexus", "live-port");
  return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : undefined;
}

/** Runs `action` under the storm through `url` (and, for HAProxy, the capacity sampler). */
async function underStorm(
  url: string,
  action: () => Promise<void>,
  sampleHaproxy: boolean,
): Promise<{ storm: StormSummary; describe: string; down: string[]; samples: number }> {
  expect(await waitForSteady(url), `${url} is not serving before the load`).toBe(true);
  const storm = startPostStorm({ url, connections: STORM_CONNECTIONS, maxSeconds: MAX_LOAD_SECONDS });
  const sampler = sampleHaproxy ? sampleCapacity() : undefined;
  let failure: unknown;
  try {
    await sleep(1000);
    await action();
    await sleep(1000);
  } catch (error) {
    failure = error;
  }
  const result = await storm.stop();
  const capacity = (await sampler?.stop()) ?? { samples: 0, down: [] };
  if (failure !== undefined) throw failure;
  expect(result.hardStopped).toBe(false);
  const summary = summarizeStorm(result.records);
  const failures = result.records
    .filter((r) => r.failure)
    .map((r) => `${new Date(r.start).toISOString()} ${r.error}`)
    .join("\n");
  return {
    storm: summary,
    describe: `${describeStorm("storm", summary)}\n${failures}\n${lastOutput}`,
    ...capacity,
  };
}

/** The last command's output, for a failure's message. */
let lastOutput = "";

async function deploy(config: string, release: string, ...more: string[]) {
  const r = await nexus(["-c", config, "deploy", "--release-id", release, ...more]);
  lastOutput = r.all;
  return r;
}

/** Sets servers' HAProxy admin state directly (the single-server scenario takes the others out). */
async function haproxySet(servers: readonly string[], state: "ready" | "maint"): Promise<void> {
  const commands = servers.map((s) => `set server ${sandboxHaproxy().backend}/${s} state ${state}`).join(";");
  await run("sh", [
    "-c",
    `printf '%s\\n' "$2" | socat stdio "UNIX-CONNECT:$1"`,
    "sh",
    haproxyPaths(hostHome(sandboxHaproxy().host)).socket,
    commands,
  ]);
}

/** True when something accepts a connection on host:port. */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The new process (app.surgePort) was stopped; the old one answers through the balancer, on `release`. */
async function expectOldProcessServing(release: string): Promise<void> {
  expect(await listening(hostAddress(SERVERS[0] ?? ""), 3001)).toBe(false);
  const answers = await throughLb(6);
  expect(
    answers.every((a) => a.status === 200 && a.release === release),
    JSON.stringify(answers),
  ).toBe(true);
}

describe("surge strategy", () => {
  let fleetConfig: string;
  let oneConfig: string;
  let base: string;
  const [alpha = "", ...others] = SERVERS;
  const beta = others[0] ?? "";

  /**
   * Servers left on app.surgePort (by HAProxy's live line or their record) go back to app.port on
   * base, HAProxy on their first line: the shape every other file expects of the shared sandbox.
   * A surge moves a server to the other port; the drain strategy then rolls base back in place.
   */
  async function backOnAppPort(): Promise<void> {
    if (SERVERS.some((s) => existsSync(path.join(deployDir(s), ".nexus", "journal.json")))) {
      const recovered = await nexus(["-c", fleetConfig, "recover"]);
      expect(recovered.exitCode, recovered.all).toBe(0);
    }
    const state = await haproxyState();
    const moved = SERVERS.filter(
      (s) => (livePort(s) ?? 3000) !== 3000 || state.find((b) => b.server === s)?.port !== 3000,
    );
    if (moved.length === 0) return;
    const only = ["--only", moved.join(",")];
    const there = await deploy(fleetConfig, uniqueRelease("surge-home"), ...only);
    expect(there.exitCode, there.all).toBe(0);
    const back = await nexus(["-c", fleetConfig, "rollback", "--to", base, "--strategy", "drain", ...only]);
    expect(back.exitCode, back.all).toBe(0);
    expect((await haproxyState()).map((b) => b.port)).toEqual([3000, 3000, 3000]);
    for (const s of SERVERS) expect(livePort(s) ?? 3000, s).toBe(3000);
  }

  beforeAll(async () => {
    fleetConfig = writeHaproxyConfig({ rolling: { strategy: "surge" } });
    oneConfig = writeHaproxyConfig({
      rolling: { strategy: "surge" },
      servers: sandboxInfo()
        .hosts.slice(0, 1)
        .map((h) => ({ name: h.name, host: h.address, port: h.sshPort, env: { HOST: h.address } })),
    });
    // A known start: every server on one release, deployed the usual way (drain), on app.port.
    base = uniqueRelease("surge-base");
    const first = await deploy(writeHaproxyConfig(), base, "--strategy", "drain");
    expect(first.exitCode, first.all).toBe(0);
  }, 180_000);

  // Whatever failed above, the next files find every server on app.port, HAProxy on its first line.
  afterAll(backOnAppPort, 180_000);

  it("deploys and rolls back a fleet of 3 through HAProxy, every server up, not one request failed", async () => {
    const release = uniqueRelease("surge-3");
    const plan = await nexus(["-c", fleetConfig, "deploy", "--dry-run"]);
    expect(plan.all).toContain("start the release beside the serving process");
    expect(plan.all).toContain("no server leaves rotation");
    const deployed = await underStorm(
      sandboxHaproxy().url,
      async () => {
        const r = await deploy(fleetConfig, release);
        expect(r.exitCode, r.all).toBe(0);
      },
      true,
    );
    // The switch readies each server's standby line and drains the live one: HAProxy never sends
    // a request on a connection it holds to the old process, so none is reset when it stops.
    expect(deployed.storm.failed, deployed.describe).toBe(0);
    expect(deployed.storm.requests).toBeGreaterThan(100);
    expect(deployed.down, `${deployed.samples} samples`).toEqual([]);
    expect(deployed.samples).toBeGreaterThan(10);
    for (const s of SERVERS) {
      expect(currentRelease(s)).toBe(release);
      expect(livePort(s)).toBe(3001);
    }
    const ports = (await haproxyState()).map((s) => s.port);
    expect(ports).toEqual([3001, 3001, 3001]);
    // The old process is stopped: its port is free for the next deploy.
    expect(await listening(hostAddress(alpha), 3000)).toBe(false);
    // PM2's saved list (what a reboot brings back) holds the new process only.
    for (const s of SERVERS) expect(savedProcesses(s)).toEqual(["nexus-app-3001"]);

    const status = await nexus(["-c", fleetConfig, "status"]);
    expect(status.exitCode, status.all).toBe(0);
    expect(status.all).toMatch(/nexus-alpha\s+in rotation\s+3001\s+ok/);

    // The drain strategy does not know a server left on app.surgePort: refused, nothing changed.
    const drain = await nexus(["-c", fleetConfig, "restart", "--strategy", "drain"]);
    expect(drain.exitCode, drain.all).toBe(2);
    expect(drain.all).toContain("--strategy surge");

    const rolledBack = await underStorm(
      sandboxHaproxy().url,
      async () => {
        const r = await nexus(["-c", fleetConfig, "rollback"]);
        lastOutput = r.all;
        expect(r.exitCode, r.all).toBe(0);
      },
      true,
    );
    expect(rolledBack.storm.failed, rolledBack.describe).toBe(0);
    expect(rolledBack.down).toEqual([]);
    for (const s of SERVERS) {
      expect(currentRelease(s)).toBe(base);
      expect(livePort(s)).toBe(3000);
    }
    expect((await haproxyState()).map((s) => s.port)).toEqual([3000, 3000, 3000]);
    expect(await listening(hostAddress(alpha), 3001)).toBe(false);
  }, 300_000);

  it("deploys and rolls back a one-server fleet through HAProxy, not one request failed", async () => {
    // The others out: every request goes to the one server.
    await haproxySet(others, "maint");
    try {
      // With the drain strategy the batch leaves no server in rotation: the plan says so, and
      // draining the last server in rotation by hand is refused without --force.
      const plan = await nexus(["-c", oneConfig, "deploy", "--dry-run", "--strategy", "drain"]);
      expect(plan.all).toContain("leaves no server in rotation");
      const drain = await nexus(["-c", oneConfig, "drain", alpha]);
      expect(drain.exitCode, drain.all).toBe(2);
      expect(drain.all).toContain("last server in rotation");
      expect((await haproxyState()).find((s) => s.server === alpha)).toMatchObject({
        maint: false,
        drain: false,
      });
      const release = uniqueRelease("surge-1");
      const deployed = await underStorm(
        sandboxHaproxy().url,
        async () => {
          const r = await deploy(oneConfig, release);
          expect(r.exitCode, r.all).toBe(0);
        },
        false,
      );
      expect(deployed.storm.failed, deployed.describe).toBe(0);
      expect(deployed.storm.servers).toEqual({ [alpha]: deployed.storm.requests - deployed.storm.failed });
      expect(currentRelease(alpha)).toBe(release);
      const rolledBack = await underStorm(
        sandboxHaproxy().url,
        async () => {
          const r = await nexus(["-c", oneConfig, "rollback", "--to", base]);
          lastOutput = r.all;
          expect(r.exitCode, r.all).toBe(0);
        },
        false,
      );
      expect(rolledBack.storm.failed, rolledBack.describe).toBe(0);
      expect(currentRelease(alpha)).toBe(base);
    } finally {
      await haproxySet(others, "ready");
    }
  }, 300_000);

  it("a release that fails its gate leaves the old process serving and the balancer as it was", async () => {
    const broken = writeHaproxyConfig({
      rolling: { strategy: "surge" },
      app: { root: fixture("app-unhealthy") },
      health: { deadline: "4s" },
    });
    const before = await haproxyState();
    const r = await deploy(broken, uniqueRelease("surge-broken"));
    expect(r.exitCode, r.all).toBe(1);
    expect(await haproxyState()).toEqual(before);
    for (const s of SERVERS) {
      expect(currentRelease(s)).toBe(base);
      // Run alone (-t), no earlier surge wrote a record: a server never surged serves on app.port.
      expect(livePort(s) ?? 3000).toBe(3000);
    }
    await expectOldProcessServing(base);
  }, 180_000);

  it("Ctrl-C while the new process is gated: it is stopped, the old one serves, the balancer as it was, no lock", async () => {
    // An app that takes 8 s to listen: the interrupt lands inside its gate, not after it passed.
    const slow = writeHaproxyConfig({
      rolling: { strategy: "surge" },
      pm2: { env: { NODE_ENV: "production", FIXTURE_LISTEN_AFTER_MS: "8000" } },
      health: { startTimeout: "60s" },
    });
    const before = await haproxyState();
    const r = await interruptAt(
      ["-c", slow, "deploy", "--release-id", uniqueRelease("surge-int")],
      /nexus-alpha: restart ok/,
    );
    lastOutput = r.all;
    expect(r.sent, lastOutput).toBe(true);
    expect(r.exitCode, lastOutput).toBe(130);
    expect(await haproxyState()).toEqual(before);
    for (const s of SERVERS) {
      expect(currentRelease(s)).toBe(base);
      // No record: a server never surged serves on app.port.
      expect(livePort(s) ?? 3000).toBe(3000);
      expect(lockOn(s)).toBeUndefined();
    }
    await expectOldProcessServing(base);
  }, 180_000);

  it("kill -9 once a server was switched and the next one's new process is in its gate: recover surges the first back, keeps the second's serving process", async () => {
    const release = uniqueRelease("surge-kill");
    const betaBefore = await appOn(hostAddress(beta), 3000);
    expect(betaBefore.release).toBe(base);
    // A gate of 3 s at least: the kill lands while beta's new process (on 3001) is in its gate,
    // `current` already pointing at it, the balancer still on beta's old process.
    const slowGate = writeHaproxyConfig({ rolling: { strategy: "surge" }, health: { minUptime: "3s" } });
    const r = await interruptAt(
      ["-c", slowGate, "deploy", "--release-id", release],
      /nexus-beta: restart ok/,
      "SIGKILL",
    );
    lastOutput = r.all;
    expect(r.sent, lastOutput).toBe(true);
    expect(currentRelease(alpha), lastOutput).toBe(release);
    expect(currentRelease(beta), lastOutput).toBe(release);
    // The killed command's process for beta lives on under PM2.
    await waitForPort(hostAddress(beta), 3001);
    const recovered = await nexus(["-c", fleetConfig, "recover"]);
    lastOutput = recovered.all;
    expect(recovered.exitCode, lastOutput).toBe(0);
    // alpha, switched to the new release on 3001, surged back onto base on 3000; beta's old process
    // still served base: kept, the same process (not restarted), the killed command's one stopped.
    expect(lastOutput).toMatch(
      /nexus-beta: restore ok: \S+ kept on port 3000; the process on port 3001 stopped/,
    );
    expect(lastOutput).toMatch(/nexus-beta\s+restored\s+\S+\s+-\s+its old process still served it/);
    expect(await appOn(hostAddress(beta), 3000)).toEqual(betaBefore);
    const state = await haproxyState();
    for (const s of SERVERS) {
      expect(currentRelease(s), lastOutput).toBe(base);
      expect(lockOn(s), lastOutput).toBeUndefined();
      expect(existsSync(path.join(deployDir(s), ".nexus", "journal.json")), s).toBe(false);
      expect(livePort(s) ?? 3000, s).toBe(3000);
      expect(state.find((b) => b.server === s)?.port, `${s}\n${lastOutput}`).toBe(3000);
      expect((await appOn(hostAddress(s), 3000)).release, s).toBe(base);
      expect(await listening(hostAddress(s), 3001), s).toBe(false);
    }
    expect(savedProcesses(beta)).toEqual(["nexus-app"]);
    const notUp = state.filter((s) => s.maint || s.drain || s.operational !== 2);
    expect(notUp, lastOutput).toEqual([]);
    await expectOldProcessServing(base);
  }, 300_000);

  it("through Nginx: one reload per batch moves the upstream line's port; only reload resets fail", async () => {
    const config = writeConfig({ rolling: { strategy: "surge", batchSize: 3 } });
    const release = uniqueRelease("surge-nginx");
    const deployed = await underStorm(
      sandboxInfo().lb.url,
      async () => {
        const r = await deploy(config, release);
        expect(r.exitCode, r.all).toBe(0);
      },
      false,
    );
    // An Nginx reload closes idle keep-alive client connections (a request racing it is reset):
    // the one failure Nginx allows; no request failed any other way.
    expect(deployed.storm.failed - deployed.storm.resetReused, deployed.describe).toBe(0);
    const upstream = readUpstream();
    for (const h of sandboxInfo().hosts) expect(upstream).toContain(`${h.address}:3001`);
    // --to: the broken release above was staged everywhere but failed only where it was tried.
    const back = await nexus(["-c", config, "rollback", "--to", base]);
    expect(back.exitCode, back.all).toBe(0);
    for (const h of sandboxInfo().hosts) expect(readUpstream()).toContain(`${h.address}:3000`);
  }, 300_000);

  it("what probes a surged server afterwards probes the port that serves: the watch, enable", async () => {
    // No traffic: the watch is inconclusive and passes; only its /health probes could fail it.
    const config = writeConfig({
      rolling: { strategy: "surge", batchSize: 3, watch: { duration: "2s", inconclusive: "pass" } },
    });
    const r = await deploy(config, uniqueRelease("surge-watch"));
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).not.toMatch(/\/health failed/);
    for (const s of SERVERS) expect(livePort(s)).toBe(3001);
    // Nothing listens on app.port now: enable's check must go to 3001.
    expect(await listening(hostAddress(alpha), 3000)).toBe(false);
    const drained = await nexus(["-c", config, "drain", alpha]);
    expect(drained.exitCode, drained.all).toBe(0);
    const enabled = await nexus(["-c", config, "enable", alpha]);
    expect(enabled.exitCode, enabled.all).toBe(0);
    expect(readUpstream()).not.toMatch(/\bdown;/);
    const back = await nexus(["-c", config, "rollback", "--to", base]);
    expect(back.exitCode, back.all).toBe(0);
    for (const s of SERVERS) expect(livePort(s)).toBe(3000);
  }, 300_000);
});

/** The release the app on host:port says it runs, and its pid. */
async function appOn(host: string, port: number): Promise<{ release?: string; pid?: number }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const response = await request(`http://${host}:${port}/`, { dispatcher, headersTimeout: 5000 });
    const { release, pid } = (await response.body.json()) as { release?: string; pid?: number };
    return { release, pid };
  } finally {
    await dispatcher.close();
  }
}

function hostAddress(name: string): string {
  const host = sandboxInfo().hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no sandbox host ${name}`);
  return host.address;
}
