import { writeFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import {
  copyFixture,
  currentRelease,
  nexus,
  readUpstream,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { describeFailures, type RequestRecord, startLoad, summarize, waitForSteady } from "./load.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function jsonEvents(stdout: string): Record<string, any>[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** fixtures/app with every fifth POST answering 500: /health passes, only the error rate shows it. */
const BROKEN_ENV = { pm2: { env: { FIXTURE_FAIL_EVERY_NTH_POST: "5" } } };

function watchConfig(appRoot: string, watch: unknown, overrides: Record<string, unknown> = {}): string {
  return writeConfig({ ...overrides, app: { root: appRoot }, rolling: { watch } });
}

/** Short windows; enough requests to judge at the load below (~50 per second per server). */
const WATCH = { duration: "2s", minRequests: 20 };

describe("rolling.watch: the error rate after each server rejoins", () => {
  const good = copyFixture("app");
  const releaseA = uniqueRelease("watch-a");

  beforeAll(async () => {
    const first = await nexus([
      "-c",
      writeConfig({ app: { root: good } }),
      "deploy",
      "--release-id",
      releaseA,
    ]);
    expect(first.exitCode, first.all).toBe(0);
  });

  it("fails preflight, before anything is drained, on an access log without the upstream fields", async () => {
    // A log in Nginx's default "combined" format, where the watch cannot tell servers apart.
    const nginxDir = path.dirname(sandboxInfo().lb.accessLog);
    writeFileSync(
      path.join(nginxDir, "combined.log"),
      '127.0.0.1 - - [29/Nov/2026:09:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.0"\n',
    );
    const upstreamBefore = readUpstream();
    const config = writeConfig({
      app: { root: good },
      balancer: { accessLog: path.join(nginxDir, "combined.log") },
      rolling: { watch: "2s" },
    });
    const release = uniqueRelease("watch-preflight");
    const run = await nexus(["-c", config, "--json", "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(2);
    const events = jsonEvents(run.stdout);
    const message = String(events.find((e) => e.type === "error")?.message);
    expect(message).toMatch(/balancer\.accessLog .*combined\.log.* lacks the upstream fields/);
    expect(message).toContain("log_format nexus");
    expect(message).toContain("upstream=$upstream_addr upstream_status=$upstream_status");
    expect(message).toContain("nexus nginx-config");
    expect(run.all).not.toMatch(/\n\s+at /);
    expect(events.some((e) => e.type === "step" && e.step === "drain")).toBe(false);
    expect(events.some((e) => e.type === "step" && e.step === "upload")).toBe(false);
    expect(readUpstream()).toBe(upstreamBefore);
    for (const name of SERVERS) expect(currentRelease(name), name).toBe(releaseA);

    // A path where Nginx writes nothing at all fails the same way.
    const missing = await nexus([
      "-c",
      writeConfig({ balancer: { accessLog: path.join(nginxDir, "no-such.log") }, rolling: { watch: "2s" } }),
      "deploy",
      "--release-id",
      uniqueRelease("watch-missing"),
    ]);
    expect(missing.exitCode, missing.all).toBe(2);
    expect(missing.stderr).toMatch(/balancer\.accessLog .*no-such\.log.* does not exist/);
  });

  it("under load: stops a release that fails a fifth of its POSTs on the first server, then passes a good one without losing a request", async () => {
    const info = sandboxInfo();
    expect(await waitForSteady(info.lb.url)).toBe(true);
    const load = startLoad({ url: info.lb.url, rate: 160, maxSeconds: 150 });
    const releaseBad = uniqueRelease("watch-bad");
    const releaseB = uniqueRelease("watch-b");
    let bad: Awaited<ReturnType<typeof nexus>> | undefined;
    let goodRun: Awaited<ReturnType<typeof nexus>> | undefined;
    let goodFrom = 0;
    let goodTo = 0;
    // The load is stopped (its connections closed) whether or not a deploy failed.
    let failure: unknown;
    try {
      await sleep(1500);
      bad = await nexus([
        "-c",
        watchConfig(good, WATCH, BROKEN_ENV),
        "--json",
        "deploy",
        "--release-id",
        releaseBad,
      ]);
      await sleep(500);
      goodFrom = Date.now();
      goodRun = await nexus(["-c", watchConfig(good, WATCH), "--json", "deploy", "--release-id", releaseB]);
      goodTo = Date.now();
      await sleep(1000);
    } catch (error) {
      failure = error ?? new Error("the scenario failed");
    }
    const result = await load.stop();
    if (failure !== undefined) throw failure;
    expect(result.hardStopped, "the scenario outlived the load").toBe(false);

    // The bad release: its /health passed, the watch caught it on the first server.
    expect(bad?.exitCode, bad?.all).toBe(1);
    const badEvents = jsonEvents(bad?.stdout ?? "");
    const gates = badEvents.filter((e) => e.type === "step" && e.step === "gate" && e.status === "done");
    expect(gates.map((e) => e.server)).toEqual([SERVERS[0], SERVERS[0]]); // its gate, then the restore's
    const watches = badEvents.filter((e) => e.type === "watch");
    expect(watches).toHaveLength(1);
    const breach = watches[0] as Record<string, any>;
    expect(breach).toMatchObject({
      server: SERVERS[0],
      result: "breach",
      threshold: "maxFailureRatio",
      limit: 0.01,
    });
    expect(breach.requests).toBeGreaterThanOrEqual(20);
    expect(breach.failures).toBeGreaterThan(0);
    expect(breach.rate).toBeCloseTo(breach.failures / breach.requests, 6);
    expect(breach.rate).toBeGreaterThan(0.01);
    expect(breach.untouchedRate).toBe(0);
    // The other servers were never drained.
    for (const name of SERVERS.slice(1))
      expect(badEvents.some((e) => e.type === "step" && e.server === name && e.step === "drain")).toBe(false);
    const summary = badEvents.find((e) => e.type === "summary") as Record<string, any>;
    expect(summary.outcome).toBe("failed");
    const first = summary.rows.find((r: any) => r.server === SERVERS[0]);
    expect(first).toMatchObject({ result: "rolled back", release: releaseA });
    expect(first.watched).toEqual({
      requests: breach.requests,
      failures: breach.failures,
      rate: breach.rate,
    });
    expect(first.note).toMatch(/^watch: \d+ of \d+ request\(s\) failed .* above maxFailureRatio 1%/);
    for (const name of SERVERS.slice(1))
      expect(summary.rows.find((r: any) => r.server === name)).toMatchObject({ result: "not reached" });
    // What the clients saw from the bad release: 500s from its POSTs, nothing else failed.
    const beforeGood = result.records.filter((r) => r.start < goodFrom);
    const failed = beforeGood.filter((r) => r.failure);
    expect(failed.length).toBeGreaterThan(0);
    expect(
      failed.filter(
        (r: RequestRecord) => !(r.status === 500 && r.method === "POST" && r.release === releaseBad),
      ),
      describeFailures(beforeGood),
    ).toEqual([]);

    // The good release: every window passes and not one request fails during that deploy.
    expect(goodRun?.exitCode, goodRun?.all).toBe(0);
    const goodEvents = jsonEvents(goodRun?.stdout ?? "");
    const passes = goodEvents.filter((e) => e.type === "watch");
    expect(passes.map((e) => [e.server, e.result])).toEqual(SERVERS.map((name) => [name, "pass"]));
    for (const e of passes) expect(e.failures).toBe(0);
    const goodSummary = goodEvents.find((e) => e.type === "summary") as Record<string, any>;
    for (const row of goodSummary.rows) expect(row.watched.failures).toBe(0);
    const during = summarize(result.records, goodFrom, goodTo);
    expect(during.releases[releaseB]).toBeGreaterThan(0);
    expect(
      during.failed,
      describeFailures(result.records.filter((r) => r.start >= goodFrom && r.start < goodTo)),
    ).toBe(0);

    for (const name of SERVERS) expect(currentRelease(name), name).toBe(releaseB);
    expect(readUpstream()).not.toMatch(/\bdown;/);
  });

  it("through HAProxy's counters (no access log): stops the bad release on the first server", async () => {
    const haproxy = sandboxHaproxy();
    expect(await waitForSteady(haproxy.url)).toBe(true);
    const load = startLoad({ url: haproxy.url, rate: 120, maxSeconds: 90 });
    const releaseBad = uniqueRelease("watch-hap");
    let run: Awaited<ReturnType<typeof nexus>> | undefined;
    let failure: unknown;
    try {
      await sleep(1000);
      run = await nexus([
        "-c",
        writeHaproxyConfig({ ...BROKEN_ENV, app: { root: good }, rolling: { watch: WATCH } }),
        "--json",
        "deploy",
        "--release-id",
        releaseBad,
      ]);
    } catch (error) {
      failure = error ?? new Error("the scenario failed");
    }
    await load.stop();
    if (failure !== undefined) throw failure;
    expect(run?.exitCode, run?.all).toBe(1);
    const events = jsonEvents(run?.stdout ?? "");
    const watches = events.filter((e) => e.type === "watch");
    expect(watches.map((e) => [e.server, e.result])).toEqual([[SERVERS[0], "breach"]]);
    expect(watches[0]?.failures).toBeGreaterThan(0);
    const summary = events.find((e) => e.type === "summary") as Record<string, any>;
    expect(summary.rows.find((r: any) => r.server === SERVERS[0])).toMatchObject({ result: "rolled back" });
    for (const name of SERVERS) expect(currentRelease(name), name).not.toBe(releaseBad);
  });

  it("with no traffic at all, extends the window once and goes on with a warning", async () => {
    const release = uniqueRelease("watch-quiet");
    const run = await nexus([
      "-c",
      watchConfig(good, { duration: "1s", minRequests: 20 }),
      "--json",
      "deploy",
      "--only",
      SERVERS[2] as string,
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(0);
    const events = jsonEvents(run.stdout);
    const warnings = events.filter((e) => e.type === "warn" && e.server === SERVERS[2]).map((e) => e.message);
    expect(warnings).toContainEqual(
      expect.stringMatching(/^only 0 request\(s\) in 1s \(minRequests 20\): watching 1s more$/),
    );
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /passed its watch unjudged: only 0 request\(s\) in 2\.\d+s, fewer than minRequests 20/,
      ),
    );
    const watch = events.find((e) => e.type === "watch") as Record<string, any>;
    expect(watch).toMatchObject({ server: SERVERS[2], result: "unjudged", requests: 0, failures: 0 });
    expect(watch.seconds).toBeGreaterThanOrEqual(2);
    expect(currentRelease(SERVERS[2] as string)).toBe(release);
    expect(readUpstream()).not.toMatch(/\bdown;/);
  });

  it("Ctrl-C during a window: the batch goes back like one interrupted during its gate, exit 130", async () => {
    const before = currentRelease(SERVERS[0] as string);
    const child = execa(
      "node",
      [
        path.join(PROJECT_ROOT, "bin", "nexus.js"),
        "-c",
        watchConfig(good, { duration: "60s", minRequests: 20 }),
        "deploy",
        "--release-id",
        uniqueRelease("watch-int"),
      ],
      { reject: false, all: true, env: { CI: "true", NO_COLOR: "1" }, timeout: 180_000 },
    );
    let sent = false;
    child.stderr?.on("data", (chunk: Buffer) => {
      if (!sent && /watching nexus-alpha for 60s/.test(chunk.toString())) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const run = await child;
    expect(sent, run.all).toBe(true);
    expect(run.exitCode, run.all).toBe(130);
    expect(run.all).toMatch(/nexus-alpha: watch interrupted/);
    expect(run.all).toMatch(/nexus-alpha\s+restored .*interrupted during its watch/);
    expect(currentRelease(SERVERS[0] as string)).toBe(before);
    expect(readUpstream()).not.toMatch(/\bdown;/);
  });
});
