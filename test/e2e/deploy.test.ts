import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
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

  it("a gate's probes share one forwarded SSH connection per server (NEXUS_SSH_TRACE), not one per probe", async () => {
    const trace = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-trace-")), "trace.jsonl");
    // After the rollback test: that one needs B then A as the last two releases.
    // A probe timeout far above a probe's time: the only way to a second connection in a passing
    // gate would be a failed probe on the first, so the counts below do not depend on the load.
    const run = await nexus(
      [
        "--json",
        "-c",
        writeConfig({ health: { timeout: "10s" } }),
        "deploy",
        "--release-id",
        uniqueRelease("kept"),
      ],
      { env: { NEXUS_SSH_TRACE: trace } },
    );
    expect(run.exitCode, run.all).toBe(0);
    const forwards = readFileSync(trace, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { server: string; kind: string; what: string; error?: string })
      .filter((e) => e.kind === "forward" && e.what.startsWith("health gate "));
    const events = run.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map(
        (line) =>
          JSON.parse(line) as {
            type: string;
            server?: string;
            step?: string;
            status?: string;
            message?: string;
          },
      );
    for (const name of SERVERS) {
      const gate = events.find(
        (e) => e.type === "step" && e.server === name && e.step === "gate" && e.status === "done",
      );
      const probes = Number(/(\d+) probe\(s\)/.exec(gate?.message ?? "")?.[1]);
      expect(probes, name).toBeGreaterThanOrEqual(3);
      const mine = forwards.filter((e) => e.server === name);
      // One connection carried every probe the app answered; the attempts before it listened
      // failed as refused (sshd could not connect: nothing listening), not as resets.
      expect(
        mine.filter((e) => !e.error),
        name,
      ).toHaveLength(1);
      for (const failed of mine.filter((e) => e.error)) expect(failed.error, name).toBe("ECONNREFUSED");
      expect(mine.length, name).toBeLessThanOrEqual(probes);
    }
  });
});
