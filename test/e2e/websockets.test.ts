import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionsCut, SummaryRow } from "../../src/events/events.js";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import { fixture, jsonEvents, type NexusRun, nexus, SERVERS, uniqueRelease, writeConfig } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";
import { connectClients, until, type WsClient } from "./ws-clients.js";

/**
 * Long-lived connections (docs/apps.md, "Long-lived connections"): 30 WebSocket clients of
 * fixtures/app-ws, which keeps the contract (on SIGINT: 1001 "going away" to every client, then
 * exit), through the balancer across a deploy. Each client reconnects when closed and sends again
 * what was not acknowledged.
 */
const CLIENTS = 30;
const app = { root: fixture("app-ws") };
// Short: a WebSocket never ends by itself, so each drain lasts its whole timeout.
const DRAIN_TIMEOUT = "1s";
const health = { passes: 2 };
const overrides = (summaryFile: string) => ({
  app,
  health,
  hooks: { afterDeploy: `printf %s "$NEXUS_SUMMARY" > '${summaryFile}'` },
});

/** Each server's connections cut: from the drain steps' JSON events, the summary event, and NEXUS_SUMMARY. */
function cutPerServer(run: NexusRun, summaryFile: string) {
  const all = jsonEvents(run.stdout);
  const steps = Object.fromEntries(
    all
      .filter((e) => e.type === "step" && e.step === "drain" && e.status === "done")
      .map((e) => [e.server as string, e.connectionsCut as ConnectionsCut | undefined]),
  );
  const summary = all.find((e) => e.type === "summary") as { rows: SummaryRow[] } | undefined;
  const rows = Object.fromEntries((summary?.rows ?? []).map((r) => [r.server, r.connectionsCut]));
  // NEXUS_SUMMARY, as the afterDeploy hook got it: the summary (outcome, release, rows, …).
  const hook = JSON.parse(readFileSync(summaryFile, "utf8")) as { rows: SummaryRow[] };
  return { steps, rows, hook: Object.fromEntries(hook.rows.map((r) => [r.server, r.connectionsCut])) };
}

/** The clients go on after the deploy: each connected again and two more messages acknowledged. */
async function goOn(clients: WsClient[]): Promise<void> {
  const marks = clients.map((c) => c.delivered);
  await until(
    "every client connected again, two more messages acknowledged",
    () => clients.every((c, i) => c.connected && c.delivered >= (marks[i] ?? 0) + 2),
    15_000,
  );
}

describe("long-lived connections: 30 WebSocket clients across a deploy", () => {
  const clients: WsClient[] = [];
  const summaryFile = () => path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-ws-")), "summary.json");

  /**
   * The clients connected through `url`, a deploy with the config `configFor` writes (its
   * afterDeploy hook saving NEXUS_SUMMARY to the file given), the clients going on after it, then
   * stopped; each server's connections cut as the run and the hook said.
   */
  async function deployUnderClients(url: string, configFor: (summary: string) => string, label: string) {
    const file = summaryFile();
    const config = configFor(file);
    const connected = await connectClients(url, CLIENTS);
    clients.push(...connected);
    const run = await nexus(["--json", "-c", config, "deploy", "--release-id", uniqueRelease(label)]);
    expect(run.exitCode, run.all).toBe(0);
    await goOn(connected);
    for (const c of connected) c.stop();
    return { run, connected, cut: cutPerServer(run, file) };
  }

  beforeAll(async () => {
    const run = await nexus(["-c", writeConfig({ app, health }), "deploy"]);
    expect(run.exitCode, run.all).toBe(0);
  });

  afterAll(async () => {
    for (const c of clients) c.stop();
    // Leave the usual fixture app serving for the test files that follow.
    const run = await nexus(["-c", writeConfig(), "deploy", "--release-id", uniqueRelease("after-ws")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("through Nginx: the restart closes them with 1001, each client reconnects once per server switch at most, none loses an acknowledged message, the summary counts them per server", async () => {
    const { run, connected, cut } = await deployUnderClients(
      sandboxInfo().lb.url,
      (file) => writeConfig({ ...overrides(file), balancer: { drainTimeout: DRAIN_TIMEOUT } }),
      "ws-nginx",
    );
    for (const server of SERVERS) {
      // Every server had clients when its drain ended: the restart cut them (Nginx cannot).
      expect(cut.steps[server], server).toEqual({ byBalancer: 0, byRestart: expect.any(Number) });
      expect(cut.steps[server]?.byRestart, server).toBeGreaterThan(0);
      expect(cut.rows[server], server).toEqual(cut.steps[server]);
      expect(cut.hook[server], server).toEqual(cut.steps[server]);
    }
    const total = SERVERS.reduce((n, s) => n + (cut.rows[s]?.byRestart ?? 0), 0);
    const reconnections = connected.reduce((n, c) => n + c.reconnections, 0);
    // Each reconnection follows a cut; each client was cut at least once (every server restarted).
    expect(total).toBeGreaterThanOrEqual(reconnections);
    expect(reconnections).toBeGreaterThanOrEqual(CLIENTS);
    expect(run.stdout).not.toMatch(/"type":"error"/);
    for (const c of connected) {
      expect(c.reconnections).toBeGreaterThanOrEqual(1);
      expect(c.reconnections).toBeLessThanOrEqual(SERVERS.length);
      // The app's own close: 1001 "going away", never a connection reset.
      expect(new Set(c.closes)).toEqual(new Set([1001]));
      // Each message acknowledged exactly once, in order: no ack was lost on the way (the client
      // would have sent the message again, and a second server acknowledged it too).
      expect(c.acks).toEqual(Array.from({ length: c.delivered }, (_, i) => i + 1));
    }
  });

  it("through HAProxy: the sessions still open at drainTimeout are shut through the runtime API, counted per server", async () => {
    const { run, connected, cut } = await deployUnderClients(
      sandboxHaproxy().url,
      (file) => writeHaproxyConfig(overrides(file), DRAIN_TIMEOUT),
      "ws-haproxy",
    );
    for (const server of SERVERS) {
      // HAProxy closed every session at the timeout: none was left for the restart.
      expect(cut.steps[server], server).toEqual({ byBalancer: expect.any(Number), byRestart: 0 });
      expect(cut.steps[server]?.byBalancer, server).toBeGreaterThan(0);
      expect(cut.rows[server], server).toEqual(cut.steps[server]);
      expect(cut.hook[server], server).toEqual(cut.steps[server]);
    }
    const drains = jsonEvents(run.stdout).filter(
      (e) => e.type === "step" && e.step === "drain" && e.status === "done",
    );
    expect(drains.map((e) => e.message)).toEqual(
      SERVERS.map(() =>
        expect.stringMatching(/connection\(s\) still open at the drain timeout: \d+ shut by the balancer$/),
      ),
    );
    const total = SERVERS.reduce((n, s) => n + (cut.rows[s]?.byBalancer ?? 0), 0);
    const reconnections = connected.reduce((n, c) => n + c.reconnections, 0);
    expect(total).toBeGreaterThanOrEqual(reconnections);
    for (const c of connected) {
      expect(c.reconnections).toBeGreaterThanOrEqual(1);
      expect(c.reconnections).toBeLessThanOrEqual(SERVERS.length);
      // Closed by HAProxy, not by the app: no close frame (1006), the app had none left at SIGINT.
      expect(new Set(c.closes)).toEqual(new Set([1006]));
      // No message lost: every one acknowledged (one whose ack the shutdown cut was sent again).
      expect(new Set(c.acks)).toEqual(new Set(Array.from({ length: c.delivered }, (_, i) => i + 1)));
    }
  });
});
