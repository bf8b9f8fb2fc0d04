import { execFile } from "node:child_process";
import { copyFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { RESTART_SCRIPT, STOP_SCRIPT } from "../../src/process/pm2/restart-script.js";
import { script } from "../../src/remote/op.js";
import { sandboxHaproxy, writePairConfig } from "./balancers.js";
import {
  APP_NAME,
  currentRelease,
  deployDir,
  giveToHostUser,
  hostHome,
  jsonEvents,
  nexus,
  readUpstream,
  releaseOnDisk,
  uniqueRelease,
  upstreamFilePath,
  writeConfig,
} from "./helpers.js";
import {
  describeFailures,
  describeStorm,
  type LoadResult,
  type LoadSummary,
  naiveRollout,
  type StormResult,
  type StormSummary,
  startLoad,
  startPostStorm,
  summarize,
  summarizeStorm,
  waitForSteady,
} from "./load.js";
import { sandboxInfo } from "./sandbox-env.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 3/4 of it over keep-alive connections, 1/4 over a fresh connection per request. */
const RATE = 160;
/** Today's mix through HAProxy, beside the storm: fresh connections through it too. */
const HAPROXY_RATE = 80;
/** Keep-alive connections sending POSTs back to back, per load balancer (issue 15). */
const STORM_CONNECTIONS = 30;
/** The load stops by itself after this, whatever happens to the test. */
const MAX_LOAD_SECONDS = 120;

interface Scenario {
  result: LoadResult;
  summary: LoadSummary;
}

function line(label: string, { summary }: Scenario): string {
  const p = (v: number) => `${Math.round(v)}ms`;
  return `${label}: ${summary.requests} requests (${summary.get} GET, ${summary.post} POST; ${summary.keepAlive} keep-alive, ${summary.fresh} fresh), ${summary.failed} failed ${JSON.stringify(summary.byFailure)}, ${summary.resent} resent, p50 ${p(summary.p50)}, p99 ${p(summary.p99)}`;
}

/** The zero-downtime assertion, the same for nexus and for the naive restart. */
function assertZeroDowntime({ result, summary }: Scenario): void {
  expect(result.hardStopped, "the scenario outlived the load").toBe(false);
  expect(summary.failed, describeFailures(result.records)).toBe(0);
  expect(result.autocannon.non2xx + result.autocannon.timeouts, "autocannon's own counters").toBe(0);
}

/**
 * Runs `action` 2 s into the load and waits 1.5 s after it; a failure is returned, not thrown, so
 * that the caller stops the load (closes its connections) whether or not the action failed.
 */
async function amidLoad(action: () => Promise<void>): Promise<unknown> {
  try {
    await sleep(2000);
    await action();
    await sleep(1500);
    return undefined;
  } catch (error) {
    return error ?? new Error("the action failed");
  }
}

/** Runs `action` under steady load through the load balancer, with a quiet second before and after. */
async function underLoad(action: () => Promise<void>): Promise<Scenario> {
  const info = sandboxInfo();
  expect(await waitForSteady(info.lb.url), "the load balancer is not serving before the load").toBe(true);
  const load = startLoad({ url: info.lb.url, rate: RATE, maxSeconds: MAX_LOAD_SECONDS });
  const failure = await amidLoad(action);
  const result = await load.stop();
  if (failure !== undefined) throw failure;
  return { result, summary: summarize(result.records) };
}

interface Storm {
  result: StormResult;
  summary: StormSummary;
}

interface PairScenario {
  nginx: Scenario;
  nginxStorm: Storm;
  haproxy: Scenario;
  haproxyStorm: Storm;
}

/**
 * Runs `action` under load through both load balancers at once: on each, today's mix (GETs and
 * slow POSTs, keep-alive and fresh connections, a lost keep-alive request sent again once) and the
 * storm (30 keep-alive connections of back-to-back POSTs that are never sent again).
 */
async function underPairLoad(action: () => Promise<void>): Promise<PairScenario> {
  const info = sandboxInfo();
  const haproxyUrl = sandboxHaproxy().url;
  for (const url of [info.lb.url, haproxyUrl]) {
    expect(await waitForSteady(url), `${url} is not serving before the load`).toBe(true);
  }
  const loads = {
    nginx: startLoad({ url: info.lb.url, rate: RATE, maxSeconds: MAX_LOAD_SECONDS }),
    nginxStorm: startPostStorm({
      url: info.lb.url,
      connections: STORM_CONNECTIONS,
      maxSeconds: MAX_LOAD_SECONDS,
    }),
    haproxy: startLoad({ url: haproxyUrl, rate: HAPROXY_RATE, maxSeconds: MAX_LOAD_SECONDS }),
    haproxyStorm: startPostStorm({
      url: haproxyUrl,
      connections: STORM_CONNECTIONS,
      maxSeconds: MAX_LOAD_SECONDS,
    }),
  };
  const failure = await amidLoad(action);
  const [nginx, nginxStorm, haproxy, haproxyStorm] = await Promise.all([
    loads.nginx.stop(),
    loads.nginxStorm.stop(),
    loads.haproxy.stop(),
    loads.haproxyStorm.stop(),
  ]);
  if (failure !== undefined) throw failure;
  return {
    nginx: { result: nginx, summary: summarize(nginx.records) },
    nginxStorm: { result: nginxStorm, summary: summarizeStorm(nginxStorm.records) },
    haproxy: { result: haproxy, summary: summarize(haproxy.records) },
    haproxyStorm: { result: haproxyStorm, summary: summarizeStorm(haproxyStorm.records) },
  };
}

async function reloadBalancer(): Promise<void> {
  const info = sandboxInfo();
  await run("ssh", [
    "-F",
    path.join(info.dir, "ssh_config"),
    "-o",
    "BatchMode=yes",
    info.lb.host,
    info.lb.reloadCommand,
  ]);
}

describe("zero downtime under load", () => {
  // Nginx and HAProxy in front of the same servers, as a pair: every drain and enable goes to both,
  // so one deploy and one rollback test both drivers and the pair.
  const config = writePairConfig();
  const releaseA = uniqueRelease("zd-a");
  const releaseB = uniqueRelease("zd-b");
  const servers = () => sandboxInfo().hosts.map((h) => h.name);

  beforeAll(async () => {
    const first = await nexus(["-c", config, "deploy", "--rolling", "--release-id", releaseA]);
    expect(first.exitCode, first.all).toBe(0);
  });

  it("nexus deploy --rolling, then nexus rollback, behind Nginx and HAProxy: not one request fails", async () => {
    const events: Record<string, any>[] = [];
    const scenario = await underPairLoad(async () => {
      const deploy = await nexus(["-c", config, "--json", "deploy", "--rolling", "--release-id", releaseB]);
      expect(deploy.exitCode, deploy.all).toBe(0);
      events.push(...jsonEvents(deploy.stdout));
      await sleep(1000);
      const rollback = await nexus(["-c", config, "--json", "rollback"]);
      expect(rollback.exitCode, rollback.all).toBe(0);
      events.push(...jsonEvents(rollback.stdout));
    });
    const { nginx, haproxy } = scenario;
    console.info(line("Nginx, today's mix, deploy + rollback", nginx));
    console.info(describeStorm("Nginx, keep-alive POST storm", scenario.nginxStorm.summary));
    console.info(line("HAProxy, today's mix, deploy + rollback", haproxy));
    console.info(describeStorm("HAProxy, keep-alive POST storm", scenario.haproxyStorm.summary));

    // Today's mix loses nothing through either balancer.
    assertZeroDowntime(nginx);
    assertZeroDowntime(haproxy);
    // HAProxy changes rotation without a reload: not one of the storm's POSTs fails either.
    expect(scenario.haproxyStorm.result.hardStopped).toBe(false);
    expect(
      scenario.haproxyStorm.summary.failed,
      describeStorm("HAProxy storm", scenario.haproxyStorm.summary),
    ).toBe(0);
    // Nginx resets a few keep-alive POSTs at each reload (DESIGN.md, "Nginx's limit"): reported
    // above, not asserted; they are resets on reused sockets, never anything else.
    const nginxStorm = scenario.nginxStorm.summary;
    expect(nginxStorm.failed).toBe(nginxStorm.resetReused + nginxStorm.resetFresh);
    expect(nginxStorm.non2xx + nginxStorm.timeout).toBe(0);

    // The load was the one asked for: GETs and slow POSTs, keep-alive and fresh connections,
    // and the storm's back-to-back POSTs through both balancers.
    expect(nginx.summary.get).toBeGreaterThan(0);
    expect(nginx.summary.post).toBeGreaterThan(0);
    expect(nginx.summary.keepAlive).toBeGreaterThan(0);
    expect(nginx.summary.fresh).toBeGreaterThan(0);
    expect(haproxy.summary.fresh).toBeGreaterThan(0);
    // 30 connections really opened (a first request on a new socket each), not only asked for.
    for (const storm of [scenario.nginxStorm, scenario.haproxyStorm])
      expect(storm.result.records.filter((r) => !r.reused).length).toBeGreaterThanOrEqual(30);
    for (const storm of [scenario.nginxStorm, scenario.haproxyStorm]) {
      expect(storm.summary.releases[releaseA]).toBeGreaterThan(0);
      expect(storm.summary.releases[releaseB]).toBeGreaterThan(0);
    }
    // The switch happened under it: both releases answered, from every server.
    for (const { summary } of [nginx, haproxy]) {
      expect(summary.releases[releaseA]).toBeGreaterThan(0);
      expect(summary.releases[releaseB]).toBeGreaterThan(0);
      expect(Object.keys(summary.servers).sort()).toEqual(servers().sort());
    }
    // Every server was drained and put back, twice (deploy and rollback).
    for (const name of servers()) {
      const steps = events.filter((e) => e.type === "step" && e.server === name && e.status === "done");
      expect(steps.filter((e) => e.step === "drain")).toHaveLength(2);
      // Each drain line says what it waited for (docs/balancers.md, "How long an Nginx drain waits").
      for (const drain of steps.filter((e) => e.step === "drain"))
        expect(drain.message).toMatch(/in-flight requests done in \d+\.\d\ds/);
      expect(steps.filter((e) => e.step === "enable")).toHaveLength(2);
    }
    // And while a server was out (from its drain done to its enable), neither balancer sent it anything.
    const ledgers: [string, { server?: string; start: number; end: number }[]][] = [
      ["Nginx", nginx.result.records],
      ["Nginx storm", scenario.nginxStorm.result.records],
      ["HAProxy", haproxy.result.records],
      ["HAProxy storm", scenario.haproxyStorm.result.records],
    ];
    for (const name of servers()) {
      const mine = events.filter((e) => e.type === "step" && e.server === name);
      const drained = mine
        .filter((e) => e.step === "drain" && e.status === "done")
        .map((e) => Date.parse(e.time));
      const enabling = mine
        .filter((e) => e.step === "enable" && e.status === "start")
        .map((e) => Date.parse(e.time));
      drained.forEach((from, i) => {
        const to = enabling[i] as number;
        for (const [label, records] of ledgers) {
          const leaked = records.filter((r) => r.server === name && r.start > from && r.end < to);
          expect(
            leaked,
            `${name} answered ${leaked.length} request(s) through ${label} while drained`,
          ).toEqual([]);
        }
      });
    }
    const summaries = events.filter((e) => e.type === "summary");
    expect(summaries.map((s) => s.outcome)).toEqual(["success", "success"]);

    // Every server ends on A, in rotation on both balancers, and both serve A only.
    for (const name of servers()) expect(currentRelease(name)).toBe(releaseA);
    expect(readUpstream()).not.toMatch(/\bdown\b/);
    const status = await nexus(["-c", config, "status"]);
    for (const name of servers()) expect(status.stdout).toMatch(new RegExp(`${name}\\s+in rotation`));
    for (const { result } of [nginx, haproxy]) {
      const last = result.records.slice(-40);
      expect(last.every((r) => r.status >= 200 && r.status < 300 && r.release === releaseA)).toBe(true);
    }
  });

  it("the same harness catches the naive way (restart under PM2, no drain)", async () => {
    const info = sandboxInfo();
    // B is on disk everywhere (deployed, then rolled back from): restart each server onto it without a drain.
    for (const name of servers()) expect(releaseOnDisk(name, releaseB)).toBe(true);
    // A fresh set of Nginx workers: no failure counts left over from earlier tests.
    await reloadBalancer();
    const scenario = await underLoad(async () => {
      await naiveRollout({
        sshConfig: path.join(info.dir, "ssh_config"),
        hosts: info.hosts.map((h) => ({
          name: h.name,
          deployDir: deployDir(h.name),
          appUrl: `http://${h.appAddress}`,
        })),
        release: releaseB,
        // Stopped, then started a second later: the boot time of a real app. With the instant
        // restart of the fixture alone, whether a worker of Nginx sees enough refused connections
        // to mark every server down (its 502s) was a matter of timing; with a second of it, at
        // this load, each sees dozens for each server in turn.
        restartCommand: (ecosystem) =>
          `${script(STOP_SCRIPT, APP_NAME)} && sleep 1 && ${script(RESTART_SCRIPT, APP_NAME, ecosystem)}`,
      });
    });

    console.info(line("naive restart (no drain) under load", scenario));
    for (const name of servers()) expect(currentRelease(name)).toBe(releaseB);
    expect(scenario.summary.failed, describeFailures(scenario.result.records)).toBeGreaterThan(0);
    // The very assertion the nexus run passes fails here.
    let verdict: Error | undefined;
    try {
      assertZeroDowntime(scenario);
    } catch (error) {
      verdict = error as Error;
    }
    expect(verdict?.message).toMatch(/\d+ failed request/);
    console.info(
      `assertZeroDowntime on the naive run: ${verdict?.message.split("\n").slice(0, 5).join("\n")}`,
    );

    // Nginx disabled each restarted server for fail_timeout (30s); new workers start with a clean slate.
    await reloadBalancer();
    expect(await waitForSteady(info.lb.url)).toBe(true);
  });

  it("with the drain skipped, nexus's own deploy fails the same assertion", async () => {
    const info = sandboxInfo();
    // nexus drains and enables in a copy of the upstream file that Nginx never reads, and its
    // "reload" does nothing: every step runs as usual except that traffic is never taken away.
    const decoy = path.join(hostHome(info.lb.host), "decoy-upstream.conf");
    copyFileSync(upstreamFilePath(), decoy);
    giveToHostUser(info.lb.host, decoy);
    const skipDrain = writeConfig({
      balancer: {
        upstreamFile: "~/decoy-upstream.conf",
        testCommand: "true",
        reloadCommand: "true",
        pidFile: "~/no-such.pid",
        drainTimeout: "1s",
      },
    });
    await reloadBalancer();
    const releaseC = uniqueRelease("zd-nodrain");
    const scenario = await underLoad(async () => {
      const deploy = await nexus(["-c", skipDrain, "deploy", "--rolling", "--release-id", releaseC]);
      expect(deploy.exitCode, deploy.all).toBe(0);
    });
    console.info(line("nexus deploy with the drain skipped, under load", scenario));
    for (const name of servers()) expect(currentRelease(name)).toBe(releaseC);
    expect(scenario.summary.failed, describeFailures(scenario.result.records)).toBeGreaterThan(0);
    expect(() => assertZeroDowntime(scenario)).toThrow(/\d+ failed request/);

    await reloadBalancer();
    expect(await waitForSteady(info.lb.url)).toBe(true);
  });
});
