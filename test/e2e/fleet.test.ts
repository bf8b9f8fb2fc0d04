import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAGE_AT_ONCE } from "../../src/deploy/deploy.js";
import { sandboxDeployConfig } from "../../src/sandbox/deploy-config.js";
import { type SandboxInfo, sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { MAX_HOSTS } from "../../src/sandbox/limits.js";
import { APP_NAME, fixture, jsonEvents, nexus, uniqueRelease } from "./helpers.js";
import { TEST_FLEET_DIR, TEST_FLEET_IP_PREFIX } from "./sandbox-env.js";

/**
 * Issue 27, fifty servers: the largest sandbox (50 hosts, each its own sshd, PM2 and app) deploys
 * at 10%, and `status` answers for every server. One sandbox for the file and one deploy (the
 * 50 PM2 daemons and apps it starts are most of the file's time): every check reads that deploy's
 * `--json` events or the fleet it left. How long it takes is the bench's business
 * (scripts/bench-servers.mjs, docs/benchmarks-servers.md), never asserted here.
 */
const HOSTS = MAX_HOSTS;

type Event = Record<string, unknown>;

/** The most servers staging at once: from a server's upload start to its install's end. */
function mostStagingAtOnce(events: readonly Event[]): number {
  let now = 0;
  let most = 0;
  for (const e of events) {
    if (e.type !== "step") continue;
    if (e.step === "upload" && e.status === "start") most = Math.max(most, ++now);
    if (e.step === "install" && e.status !== "start") now--;
  }
  return most;
}

describe("a fleet of fifty", () => {
  let info: SandboxInfo;

  beforeAll(async () => {
    await sandboxPurge(TEST_FLEET_DIR).catch(() => {});
    info = await sandboxUp({ dir: TEST_FLEET_DIR, ipPrefix: TEST_FLEET_IP_PREFIX, hosts: HOSTS });
  }, 600_000);

  afterAll(async () => {
    // The state dir too (the dir is a link to it, under /var/tmp).
    if (!process.env.NEXUS_KEEP_SANDBOX) await sandboxPurge(TEST_FLEET_DIR);
  }, 300_000);

  it("deploys at 10% (staged 16 at a time, 10 batches of 5), and status answers for every server", async () => {
    expect(info.hosts).toHaveLength(HOSTS);
    const config = {
      // Nothing to install (no package.json): 50 npm installs on two shared cores would cost the
      // file a minute and prove nothing the other files do not. Its /health reports its release.
      ...sandboxDeployConfig(info, { appRoot: fixture("app-bare"), appName: APP_NAME }),
      rolling: { batchSize: "10%" },
      // 50 hosts share two cores: a probe may wait seconds for its app's turn on a CPU. The
      // timeout is a hang guard here, not a latency target (status probes all 50 at once).
      health: { interval: "150ms", deadline: "30s", passes: 3, timeout: "15s" },
    };
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-fleet-")), "deploy.config.json");
    writeFileSync(file, JSON.stringify(config, null, 2));
    const release = uniqueRelease("fleet");
    const run = await nexus(["-c", file, "--json", "deploy", "--release-id", release], { timeout: 540_000 });
    expect(run.exitCode, run.all).toBe(0);
    const events: Event[] = jsonEvents(run.stdout);
    const names = info.hosts.map((h) => h.name);

    // Staged 16 at a time: every server staged, never more than the cap at once, and the cap filled
    // (the first 16 start together, each uploading after one round trip: a server's whole staging
    // takes several, and the extraction).
    const uploadStarts = events.filter(
      (e) => e.type === "step" && e.step === "upload" && e.status === "start",
    );
    expect(uploadStarts.map((e) => e.server).sort()).toEqual([...names].sort());
    expect(mostStagingAtOnce(events)).toBe(STAGE_AT_ONCE);

    // 10 batches of 5, each server in exactly one, in the config's order.
    const batches = events
      .filter((e) => e.type === "phase" && e.phase === "roll")
      .map((e) => /^batch (\d+)\/(\d+): (.*)$/.exec(String(e.message)));
    expect(batches.map((m) => m && `${m[1]}/${m[2]}`)).toEqual(
      Array.from({ length: 10 }, (_, i) => `${i + 1}/10`),
    );
    const members = batches.map((m) => (m?.[3] ?? "").split(", "));
    for (const batch of members) expect(batch).toHaveLength(5);
    expect(members.flat()).toEqual(names);

    // Every server passed its gate and went back in rotation, on the new release.
    for (const step of ["gate", "enable"]) {
      const done = events.filter((e) => e.type === "step" && e.step === step && e.status === "done");
      expect(done.map((e) => e.server).sort(), step).toEqual([...names].sort());
    }
    const summary = events.find((e) => e.type === "summary") as {
      outcome: string;
      rows: { server: string; result: string; release: string }[];
    };
    expect(summary.outcome).toBe("success");
    expect(summary.rows.filter((r) => r.result === "deployed" && r.release === release)).toHaveLength(HOSTS);

    // status: one row per server, each in rotation on its port and healthy, on the release.
    const status = await nexus(["-c", file, "--json", "status"]);
    expect(status.exitCode, status.all).toBe(0);
    const table = JSON.parse(status.stdout.trim().split("\n").at(-1) ?? "{}") as {
      rows?: { server: string; release: string; rotation: string; port: string; health: string }[];
    };
    expect(table.rows?.map((r) => r.server).sort()).toEqual([...names].sort());
    for (const row of table.rows ?? []) {
      expect(row, row.server).toMatchObject({ release, rotation: "in rotation", port: "3000" });
      expect(row.health, row.server).toMatch(/^ok/);
    }
  }, 600_000);
});
