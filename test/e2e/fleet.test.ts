import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDeployConfig } from "../../src/sandbox/deploy-config.js";
import { type SandboxInfo, sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { APP_NAME, fixture, nexus, uniqueRelease } from "./helpers.js";
import { TEST_FLEET_DIR, TEST_FLEET_IP_PREFIX } from "./sandbox-env.js";

/**
 * Issue 27, fifty servers: the same code paths at a size the e2e suite can afford on two cores
 * (10 hosts, each its own sshd, PM2 and app; batches of 30%). The 50-host deploy at 10% runs in
 * the bench (scripts/bench-servers.mjs, docs/benchmarks-servers.md), which a test run's time
 * budget could not hold.
 */
const HOSTS = 10;

describe("a fleet of ten", () => {
  let info: SandboxInfo;

  beforeAll(async () => {
    await sandboxPurge(TEST_FLEET_DIR).catch(() => {});
    info = await sandboxUp({ dir: TEST_FLEET_DIR, ipPrefix: TEST_FLEET_IP_PREFIX, hosts: HOSTS });
  });

  afterAll(async () => {
    // The state dir too (the dir is a link to it, under /var/tmp).
    if (!process.env.NEXUS_KEEP_SANDBOX) await sandboxPurge(TEST_FLEET_DIR);
  });

  it("deploys at 30% (staged all at once, 4 batches), and status answers for every server", async () => {
    const config = {
      ...sandboxDeployConfig(info, { appRoot: fixture("app"), appName: APP_NAME }),
      pm2: { env: { NODE_ENV: "production" } },
      rolling: { batchSize: "30%" },
      health: { interval: "150ms", deadline: "30s", passes: 3 },
    };
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-fleet-")), "deploy.config.json");
    writeFileSync(file, JSON.stringify(config, null, 2));
    const release = uniqueRelease("fleet");
    const run = await nexus(["-c", file, "--json", "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    const events = run.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const batches = events.filter((e) => e.type === "phase" && e.phase === "roll");
    expect(batches).toHaveLength(4);
    // Staged all at once: every server's upload began before any had finished installing.
    const uploadStarts = events.filter(
      (e) => e.type === "step" && e.step === "upload" && e.status === "start",
    );
    const firstInstalled = events.findIndex(
      (e) => e.type === "step" && e.step === "install" && e.status === "done",
    );
    expect(uploadStarts).toHaveLength(HOSTS);
    expect(events.indexOf(uploadStarts.at(-1) as Record<string, unknown>)).toBeLessThan(firstInstalled);
    const summary = events.find((e) => e.type === "summary") as {
      rows: { result: string; release: string }[];
    };
    expect(summary.rows.filter((r) => r.result === "deployed" && r.release === release)).toHaveLength(HOSTS);

    const status = await nexus(["-c", file, "status"]);
    expect(status.exitCode, status.all).toBe(0);
    expect(status.stdout.match(/in rotation\s+3000\s+ok/g)).toHaveLength(HOSTS);
  });
});
