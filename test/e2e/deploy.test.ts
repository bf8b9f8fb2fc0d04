import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  nexus,
  readUpstream,
  releaseOnDisk,
  throughLb,
  throughLbUntilEach,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

const SERVERS = ["nexus-alpha", "nexus-beta", "nexus-gamma"];

/** How many reloads the sandbox's Nginx master has done: its error log notes each SIGHUP. */
function nginxReloads(): number {
  const log = readFileSync(path.join(path.dirname(sandboxInfo().lb.accessLog), "error.log"), "utf8");
  return log.split("\n").filter((line) => /signal 1 \(SIGHUP\) received.*reconfiguring/.test(line)).length;
}

describe("nexus deploy --rolling on the sandbox", () => {
  const config = writeConfig();
  const releaseA = uniqueRelease("a");
  const releaseB = uniqueRelease("b");

  beforeAll(async () => {
    const first = await nexus(["-c", config, "deploy", "--rolling", "--release-id", releaseA]);
    expect(first.exitCode, first.all).toBe(0);
  });

  it("deploys A then B: every server serves B, in rotation, A kept on disk, with n+1 Nginx reloads", async () => {
    const before = readUpstream();
    const reloadsBefore = nginxReloads();
    const second = await nexus(["-c", config, "deploy", "--rolling", "--release-id", releaseB]);
    expect(second.exitCode, second.all).toBe(0);
    // Enabling a server and draining the next share one reload: 3 servers, 4 reloads (not 6).
    expect(nginxReloads() - reloadsBefore).toBe(SERVERS.length + 1);
    expect(second.stderr).toMatch(/server\s+result\s+release\s+out of rotation/);
    expect(second.all).not.toContain("s3cr3t-do-not-print");

    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(releaseB);
      expect(releaseOnDisk(name, releaseA)).toBe(true);
    }
    expect(readUpstream()).toBe(before);
    expect(readUpstream()).not.toMatch(/\bdown\b/);

    const answers = await throughLbUntilEach(SERVERS);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.release))).toEqual(new Set([releaseB]));
    expect(new Set(answers.map((a) => a.server))).toEqual(new Set(SERVERS));
  });

  it("stops at the first failed gate and restores that server; the fleet stays on the good release", async () => {
    const good = currentRelease("nexus-alpha") as string;
    const broken = uniqueRelease("unhealthy");
    const before = readUpstream();
    const run = await nexus([
      "-c",
      writeConfig({ app: { root: fixture("app-unhealthy") }, health: { deadline: "6s" } }),
      "deploy",
      "--release-id",
      broken,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toContain("nexus-alpha: health gate failed");
    expect(run.stderr).toMatch(/nexus-alpha\s+rolled back\s+\S+/);
    expect(run.stderr).toMatch(/nexus-beta\s+not reached/);
    // beta and gamma were never drained or switched: their stage-only release is marked failed,
    // so no later `rollback` takes it for a release that once served there.
    for (const name of SERVERS) expect(currentRelease(name)).toBe(good);
    for (const name of SERVERS)
      expect(existsSync(path.join(deployDir(name), ".nexus", "failed", broken)), name).toBe(true);
    expect(readUpstream()).toBe(before);
    const answers = await throughLb(15);
    expect(answers.every((a) => a.status === 200 && a.release === good)).toBe(true);
  });

  it("a dry run prints the plan and changes nothing", async () => {
    const before = SERVERS.map(currentRelease);
    const upstream = readUpstream();
    const run = await nexus(["-c", config, "deploy", "--dry-run"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain("batch 1: drain nexus-alpha");
    expect(run.stdout).toContain("batch 3: drain nexus-gamma");
    expect(SERVERS.map(currentRelease)).toEqual(before);
    expect(readUpstream()).toBe(upstream);
  });

  it("nexus status shows every server in rotation, healthy, on its release", async () => {
    const run = await nexus(["-c", config, "status"]);
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) {
      expect(run.stdout).toMatch(
        new RegExp(`${name}\\s+in rotation\\s+3000\\s+ok \\(\\d+ms\\)\\s+${currentRelease(name)}\\s+online`),
      );
    }
  });

  it("rolls back to the previous release with no transfer", async () => {
    const current = currentRelease("nexus-alpha") as string;
    const run = await nexus(["-c", config, "rollback"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).not.toMatch(/upload/);
    for (const name of SERVERS) {
      const now = currentRelease(name);
      expect(now).not.toBe(current);
      expect(now).toBe(releaseA);
    }
    const answers = await throughLb(15);
    expect(answers.every((a) => a.status === 200 && a.release === releaseA)).toBe(true);
    expect(sandboxInfo().hosts).toHaveLength(3);
  });
});
