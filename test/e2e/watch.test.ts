import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import {
  copyFixture,
  currentRelease,
  jsonEvents,
  nexus,
  readUpstream,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { describeFailures, startLoad, summarize, waitForSteady } from "./load.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** fixtures/app with every fifth POST answering 500: /health passes, only the error rate shows it. */
const BROKEN_ENV = { pm2: { env: { FIXTURE_FAIL_EVERY_NTH_POST: "5" } } };

/** The fixture app's settings (docs in fixtures/app/server.js): every Nth request fails or is slower. */
const BASE_ERRORS = { FIXTURE_FAIL_EVERY_NTH_REQUEST: "1000" }; // the fleet's own 0.1%
const ERRORS_2PCT = { FIXTURE_FAIL_EVERY_NTH_REQUEST: "50" };
const SLOW_P99 = { ...BASE_ERRORS, FIXTURE_SLOW_EVERY_NTH_REQUEST: "10", FIXTURE_SLOW_MS: "150" };
const env = (values: Record<string, string>) => ({ pm2: { env: values } });

function watchConfig(appRoot: string, watch: unknown, overrides: Record<string, unknown> = {}): string {
  return writeConfig({ ...overrides, app: { root: appRoot }, rolling: { watch } });
}

/**
 * Short windows for the suite's speed: at the load below (~50 requests per second per server) a
 * window judges ~250 requests; an inconclusive one goes on up to 30 s (the bound).
 */
const WATCH = { duration: "5s", maxDuration: "30s" };

/** A webhook on loopback that records what nexus sends it. */
async function startWebhook() {
  const received: { path: string; body: any }[] = [];
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(text) });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("rolling.watch: the error rate after each server rejoins", () => {
  const good = copyFixture("app");
  const releaseA = uniqueRelease("watch-a");

  beforeAll(async () => {
    const first = await nexus([
      "-c",
      writeConfig({ app: { root: good }, ...env(BASE_ERRORS) }),
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
    expect(message).toContain(`nexus -c ${config} nginx-config`);
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

  // Three watched deploys under load, a window extended while inconclusive: minutes on a 2-core
  // machine that others load too, more than the suite's 180 s default (nexus() bounds each run).
  it("under load: rolls back a release with 2% of 5xx, then one 150 ms slower at p99, saying why (summary, webhooks, GitHub step summary), then passes a good one without losing a request", async () => {
    const info = sandboxInfo();
    const hook = await startWebhook();
    const stepSummary = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-watch-")), "summary.md");
    expect(await waitForSteady(info.lb.url)).toBe(true);
    const load = startLoad({ url: info.lb.url, rate: 160, maxSeconds: 450 });
    const releaseErrors = uniqueRelease("watch-5xx");
    const releaseSlow = uniqueRelease("watch-slow");
    const releaseB = uniqueRelease("watch-b");
    const notify = {
      notify: [
        { url: { fromEnv: "NEXUS_TEST_HOOK" }, format: "json" },
        { url: { fromEnv: "NEXUS_TEST_SLACK_HOOK" }, format: "slack", severity: "error" },
      ],
    };
    const hookEnv = {
      NEXUS_TEST_HOOK: `${hook.url}/json-secret`,
      NEXUS_TEST_SLACK_HOOK: `${hook.url}/slack-secret`,
    };
    let errorsRun: Awaited<ReturnType<typeof nexus>> | undefined;
    let slowRun: Awaited<ReturnType<typeof nexus>> | undefined;
    let goodRun: Awaited<ReturnType<typeof nexus>> | undefined;
    let goodFrom = 0;
    let goodTo = 0;
    let slowFrom = 0;
    // The load is stopped (its connections closed) whether or not a deploy failed.
    let failure: unknown;
    try {
      await sleep(1500);
      errorsRun = await nexus(
        [
          "-c",
          watchConfig(good, WATCH, { ...env(ERRORS_2PCT), ...notify }),
          "--json",
          "deploy",
          "--release-id",
          releaseErrors,
        ],
        { env: hookEnv },
      );
      slowFrom = hook.received.length;
      slowRun = await nexus(
        [
          "-c",
          watchConfig(good, WATCH, { ...env(SLOW_P99), ...notify }),
          "deploy",
          "--release-id",
          releaseSlow,
        ],
        {
          env: { ...hookEnv, GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: stepSummary },
        },
      );
      await sleep(500);
      goodFrom = Date.now();
      goodRun = await nexus([
        "-c",
        watchConfig(good, WATCH, env(BASE_ERRORS)),
        "--json",
        "deploy",
        "--release-id",
        releaseB,
      ]);
      goodTo = Date.now();
      await sleep(1000);
    } catch (error) {
      failure = error ?? new Error("the scenario failed");
    }
    const result = await load.stop();
    await hook.close();
    if (failure !== undefined) throw failure;
    expect(result.hardStopped, "the scenario outlived the load").toBe(false);

    // 2% of 5xx against 0.1% on the others: its /health passed, the watch rolled it back on the
    // first server, and the reason names the errors, the reference and the p-value.
    expect(errorsRun?.exitCode, errorsRun?.all).toBe(1);
    const errorEvents = jsonEvents(errorsRun?.stdout ?? "");
    const gates = errorEvents.filter((e) => e.type === "step" && e.step === "gate" && e.status === "done");
    expect(gates.map((e) => e.server)).toEqual([SERVERS[0], SERVERS[0]]); // its gate, then the restore's
    const watches = errorEvents.filter((e) => e.type === "watch");
    expect(watches.map((e) => [e.server, e.result, e.verdict, e.metric])).toEqual([
      [SERVERS[0], "breach", "fail", "errors"],
    ]);
    const breach = watches[0] as Record<string, any>;
    expect(breach.reference).toBe("untouched");
    expect(breach.p).toBeLessThan(0.001);
    expect(breach.rate).toBeCloseTo(breach.failures / breach.requests, 6);
    expect(breach.rate).toBeGreaterThan(0.015);
    expect(breach.untouchedRate).toBeLessThan(0.005);
    expect(breach.message).toMatch(
      /^errors \d(\.\d)?% \([\d,]+ of [\d,]+\) vs [\d.]+% on the others over \d+(\.\d)? s, p (=|<) [\d.e-]+; p99 \d+ ms vs \d+ ms$/,
    );
    for (const name of SERVERS.slice(1))
      expect(errorEvents.some((e) => e.type === "step" && e.server === name && e.step === "drain")).toBe(
        false,
      );
    const summary = errorEvents.find((e) => e.type === "summary") as Record<string, any>;
    expect(summary.outcome).toBe("failed");
    const first = summary.rows.find((r: any) => r.server === SERVERS[0]);
    expect(first).toMatchObject({
      result: "rolled back",
      release: releaseA,
      note: `watch: ${breach.message}`,
    });
    expect(first.watched).toMatchObject({
      requests: breach.requests,
      failures: breach.failures,
      rate: breach.rate,
    });
    for (const name of SERVERS.slice(1))
      expect(summary.rows.find((r: any) => r.server === name)).toMatchObject({ result: "not reached" });
    // The webhooks: every event as JSON; the errors only in Slack's shape; the URL never printed.
    const errorHooks = hook.received.slice(0, slowFrom);
    expect(errorHooks.filter((r) => r.path === "/json-secret").map((r) => r.body.kind)).toEqual([
      "begin",
      "watch-breach",
      "rollback",
    ]);
    const slack = errorHooks.filter((r) => r.path === "/slack-secret").map((r) => r.body);
    expect(slack.map((b) => Object.keys(b))).toEqual([["text"], ["text"]]);
    const htmlEscaped = (text: string) =>
      text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    expect(slack[0]?.text).toContain(`${SERVERS[0]} failed its watch: ${htmlEscaped(breach.message)}`);
    expect(errorsRun?.all).not.toContain("-secret");

    // 150 ms slower at p99, errors as the others: rolled back, the reason names the latency.
    expect(slowRun?.exitCode, slowRun?.all).toBe(1);
    const slowWatch = hook.received
      .slice(slowFrom)
      .find((r) => r.path === "/json-secret" && r.body.kind === "watch-breach")?.body.event as Record<
      string,
      any
    >;
    expect(slowWatch).toMatchObject({ server: SERVERS[0], result: "breach", metric: "latency" });
    expect(slowWatch.message).toMatch(
      /^p99 \d+ ms vs \d+ ms on the others over [\d.]+ s, p (=|<) [\d.e-]+ \(\d+ ms before the deploy\); errors /,
    );
    expect(slowWatch.latency.p99).toBeGreaterThan(slowWatch.referenceLatency.p99 + 100);
    const markdown = readFileSync(stepSummary, "utf8");
    expect(markdown).toContain(`| ${SERVERS[0]} | rolled back |`);
    expect(markdown).toContain(`| watch: ${htmlEscaped(slowWatch.message).replace(/\|/g, "\\|")} |`);
    expect(slowRun?.stderr).toMatch(new RegExp(`::error title=nexus%3A ${SERVERS[0]}::watch failed: p99 `));
    expect(slowRun?.all).not.toContain("-secret");

    // What the clients saw of the bad releases: the 500s they were built to answer, nothing else.
    const beforeGood = result.records.filter((r) => r.start < goodFrom);
    expect(
      beforeGood.filter((r) => r.failure && !(r.status === 500 && r.release !== undefined)),
      describeFailures(beforeGood),
    ).toEqual([]);

    // The good release: every window passes and no request fails that the app did not fail itself.
    expect(goodRun?.exitCode, goodRun?.all).toBe(0);
    const goodEvents = jsonEvents(goodRun?.stdout ?? "");
    const passes = goodEvents.filter((e) => e.type === "watch");
    expect(passes.map((e) => [e.server, e.result])).toEqual(SERVERS.map((name) => [name, "pass"]));
    const during = result.records.filter((r) => r.start >= goodFrom && r.start < goodTo);
    expect(summarize(result.records, goodFrom, goodTo).releases[releaseB]).toBeGreaterThan(0);
    expect(
      during.filter((r) => r.failure && !(r.status === 500 && r.release !== undefined)),
      describeFailures(during),
    ).toEqual([]);

    for (const name of SERVERS) expect(currentRelease(name), name).toBe(releaseB);
    expect(readUpstream()).not.toMatch(/\bdown;/);
  }, 480_000);

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
    expect(watches.map((e) => [e.server, e.result, e.metric, e.reference])).toEqual([
      [SERVERS[0], "breach", "errors", "untouched"],
    ]);
    expect(watches[0]?.failures).toBeGreaterThan(0);
    // HAProxy's counters carry no per-request times: latency is not judged (docs/how-it-works.md).
    expect(watches[0]?.latency).toBeUndefined();
    const summary = events.find((e) => e.type === "summary") as Record<string, any>;
    expect(summary.rows.find((r: any) => r.server === SERVERS[0])).toMatchObject({ result: "rolled back" });
    for (const name of SERVERS) expect(currentRelease(name), name).not.toBe(releaseBad);
  });

  it("with almost no traffic, the watch is inconclusive and follows rolling.watch.inconclusive (rollback)", async () => {
    const before = currentRelease(SERVERS[2] as string);
    const release = uniqueRelease("watch-quiet");
    const run = await nexus([
      "-c",
      watchConfig(good, { duration: "1s", maxDuration: "2s", inconclusive: "rollback" }),
      "--json",
      "deploy",
      "--only",
      SERVERS[2] as string,
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    const events = jsonEvents(run.stdout);
    const warnings = events.filter((e) => e.type === "warn" && e.server === SERVERS[2]).map((e) => e.message);
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^inconclusive after 1s \(errors 0% \(0 of 0\): fewer than minRequests 50.*\): watching 1s more$/,
      ),
    );
    const watch = events.find((e) => e.type === "watch") as Record<string, any>;
    expect(watch).toMatchObject({
      server: SERVERS[2],
      result: "inconclusive",
      verdict: "inconclusive",
      metric: "errors",
      requests: 0,
    });
    expect(watch.seconds).toBeGreaterThanOrEqual(2);
    const summary = events.find((e) => e.type === "summary") as Record<string, any>;
    expect(summary.rows[0]).toMatchObject({ server: SERVERS[2], result: "rolled back", release: before });
    expect(summary.rows[0].note).toMatch(
      /^watch inconclusive after 2s: errors 0% \(0 of 0\): fewer than minRequests 50/,
    );
    expect(currentRelease(SERVERS[2] as string)).toBe(before);
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
