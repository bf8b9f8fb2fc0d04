/**
 * The surge strategy (issue 28) on the sandbox: the release starts beside the old process on the
 * other port, is gated there, the balancer switches to it, the old process drains and stops. Under
 * the keep-alive POST storm that never sends a request again, through HAProxy: not one request
 * fails, and the balancer's live state (sampled every 50 ms) shows every server up throughout.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseServersState } from "../../src/balancer/haproxy/stats.js";
import { haproxyPaths } from "../../src/sandbox/haproxy.js";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import {
  currentRelease,
  deployDir,
  fixture,
  hostHome,
  nexus,
  readUpstream,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { describeStorm, type StormSummary, startPostStorm, summarizeStorm, waitForSteady } from "./load.js";
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

/** What HAProxy says right now, from its admin socket. */
async function haproxyState(): Promise<AdminState[]> {
  const { stdout } = await run("sh", [
    "-c",
    `printf 'show servers state ${sandboxHaproxy().backend}\\n' | socat stdio "UNIX-CONNECT:$1"`,
    "sh",
    haproxyPaths(hostHome(sandboxHaproxy().host)).socket,
  ]);
  return parseServersState(stdout).map(({ server, maint, drain, operational, port }) => ({
    server,
    maint,
    drain,
    operational,
    ...(port ? { port } : {}),
  }));
}

/** Samples HAProxy's state every 50 ms until stopped: every sample in which a server was not up. */
function sampleCapacity(): { stop(): Promise<{ samples: number; down: string[] }> } {
  let stopping = false;
  let samples = 0;
  const down: string[] = [];
  const loop = (async () => {
    while (!stopping) {
      const states = await haproxyState();
      samples++;
      for (const s of states) {
        // srv_op_state 2: running (HAProxy's checks pass); no maint, no drain: in rotation.
        if (s.maint || s.drain || s.operational !== 2) down.push(`${s.server} ${JSON.stringify(s)}`);
      }
      await sleep(50);
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
      return { samples, down };
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
  return { storm: summary, describe: describeStorm("storm", summary), ...capacity };
}

async function deploy(config: string, release: string, ...more: string[]) {
  const r = await nexus(["-c", config, "deploy", "--release-id", release, ...more]);
  return r;
}

describe("surge strategy", () => {
  let fleetConfig: string;
  let oneConfig: string;
  let base: string;

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

  it("deploys and rolls back a fleet of 3 through HAProxy with no failed request and every server up", async () => {
    const release = uniqueRelease("surge-3");
    const before = SERVERS.map(livePort);
    const deployed = await underStorm(
      sandboxHaproxy().url,
      async () => {
        const r = await deploy(fleetConfig, release);
        expect(r.exitCode, r.all).toBe(0);
      },
      true,
    );
    expect(deployed.storm.failed, deployed.describe).toBe(0);
    expect(deployed.storm.requests).toBeGreaterThan(100);
    expect(deployed.down, `${deployed.samples} samples`).toEqual([]);
    expect(deployed.samples).toBeGreaterThan(10);
    for (const [i, s] of SERVERS.entries()) {
      expect(currentRelease(s)).toBe(release);
      expect(livePort(s)).not.toBe(before[i] ?? 3000);
    }
    const ports = Object.fromEntries((await haproxyState()).map((s) => [s.server, s.port]));
    expect(new Set(Object.values(ports)).size, JSON.stringify(ports)).toBe(1);
    expect(Object.values(ports)[0]).toBe(livePort(SERVERS[0] as string));

    const status = await nexus(["-c", fleetConfig, "status"]);
    expect(status.all).toContain(`:${livePort(SERVERS[0] as string)}`);

    const rolledBack = await underStorm(
      sandboxHaproxy().url,
      async () => {
        const r = await nexus(["-c", fleetConfig, "rollback"]);
        expect(r.exitCode, r.all).toBe(0);
      },
      true,
    );
    expect(rolledBack.storm.failed, rolledBack.describe).toBe(0);
    expect(rolledBack.down).toEqual([]);
    for (const s of SERVERS) expect(currentRelease(s)).toBe(base);
  }, 300_000);
});

void fixture;
void readUpstream;
