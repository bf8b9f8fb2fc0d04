import { readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import { beforeEach, describe, expect, it } from "vitest";
import {
  currentRelease,
  fixture,
  fleetSnapshot,
  lockOn,
  nexus,
  plantLock,
  readUpstream,
  releaseOnDisk,
  releasesOnDisk,
  SERVERS,
  stillServing,
  throughLb,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

/** A config where one server's env makes the (otherwise healthy) fixture app fail /health. */
function failingOn(server: string, extra: Record<string, unknown> = {}): string {
  const info = sandboxInfo();
  return writeConfig({
    ...extra,
    servers: info.hosts.map((h) => ({
      name: h.name,
      host: h.address,
      port: h.sshPort,
      env: { HOST: h.address, ...(h.name === server ? { FIXTURE_HEALTH_STATUS: "500" } : {}) },
    })),
    health: { interval: "100ms", deadline: "6s", passes: 3 },
  });
}

function drainedIn(output: string): string[] {
  return SERVERS.filter((name) => new RegExp(`${name}: drain ok`).test(output));
}

describe("the rolling engine", () => {
  const config = writeConfig();
  let good = "";

  beforeEach(async () => {
    // Every test starts from a healthy fleet on one good release, all in rotation: the one the
    // last test left, when it left the fleet as a fresh deploy of it would (most do).
    const serving = currentRelease(SERVERS[0] as string);
    if (serving && (await stillServing(serving))) {
      good = serving;
      return;
    }
    good = uniqueRelease("good");
    const run = await nexus(["-c", config, "deploy", "--release-id", good]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("a failing npm install drains nothing and removes the partial release", async () => {
    const before = readUpstream();
    const release = uniqueRelease("badinstall");
    const run = await nexus([
      "-c",
      writeConfig({ app: { root: fixture("app-badinstall") } }),
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/install FAILED/);
    expect(drainedIn(run.stderr)).toEqual([]);
    expect(readUpstream()).toBe(before);
    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(good);
      expect(releaseOnDisk(name, release)).toBe(false);
    }
  });

  it("rolls in batches of 2 while the third server carries the traffic", async () => {
    const release = uniqueRelease("batch2");
    const run = await nexus([
      "-c",
      writeConfig({ rolling: { batchSize: 2 } }),
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stderr).toContain("batch 1/2: nexus-alpha, nexus-beta");
    expect(run.stderr).toContain("batch 2/2: nexus-gamma");
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
  });

  it("refuses a batch size that would leave no server in rotation", async () => {
    const run = await nexus(["-c", writeConfig({ rolling: { batchSize: "100%" } }), "deploy"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("cannot keep 1 of 3 server(s) in rotation");
  });

  it("a failing canary touches nothing else", async () => {
    const before = readUpstream();
    const release = uniqueRelease("canary");
    const run = await nexus([
      "-c",
      failingOn("nexus-alpha", { rolling: { canary: 1 } }),
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toContain("canary: nexus-alpha");
    expect(drainedIn(run.stderr)).toEqual(["nexus-alpha"]);
    expect(run.stderr).toMatch(/nexus-beta\s+not reached/);
    expect(run.stderr).toMatch(/nexus-gamma\s+not reached/);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(good);
    expect(readUpstream()).toBe(before);
  });

  it("rollback-all: a failure on the last server puts the earlier ones back too", async () => {
    const release = uniqueRelease("lastfails");
    const run = await nexus(["-c", failingOn("nexus-gamma"), "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/nexus-alpha\s+rolled back\s+\S+/);
    expect(run.stderr).toMatch(/nexus-beta\s+rolled back/);
    expect(run.stderr).toMatch(/nexus-gamma\s+rolled back/);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(good);
    const answers = await throughLb(12);
    expect(answers.every((a) => a.status === 200 && a.release === good)).toBe(true);
  });

  it("halt: only the failed server goes back, and the summary says so", async () => {
    const release = uniqueRelease("halt");
    const run = await nexus([
      "-c",
      failingOn("nexus-gamma", { rolling: { onFailure: "halt" } }),
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/nexus-alpha\s+deployed/);
    expect(run.stderr).toMatch(/nexus-gamma\s+restored/);
    expect(currentRelease("nexus-alpha")).toBe(release);
    expect(currentRelease("nexus-beta")).toBe(release);
    expect(currentRelease("nexus-gamma")).toBe(good);
    expect(readUpstream()).not.toMatch(/\bdown;/);
  });

  it("a crash-looping app fails the gate although /health answers between crashes; its log lines are masked", async () => {
    // Deterministic on a loaded machine: the fixture never answers 3 probes from one process, and
    // when the probes do not pass in time the gate still reads PM2's restart count and reports it.
    const release = uniqueRelease("flaky");
    const run = await nexus([
      "-c",
      writeConfig({ app: { root: fixture("app-flaky") }, health: { deadline: "8s", minUptime: "1s" } }),
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/the app restarted \d+ time\(s\) during the gate \(crash loop\)/);
    expect(run.stderr).toContain("probe timeline");
    expect(run.stderr).toContain("lost the database connection (token ***)");
    expect(run.all).not.toContain("s3cr3t-do-not-print");
    for (const name of SERVERS) expect(currentRelease(name)).toBe(good);
  });

  it("a second deploy is refused while one holds the lock, naming the holder", async () => {
    const [a, b] = await Promise.all([
      nexus(["-c", config, "deploy", "--release-id", uniqueRelease("race-a")]),
      nexus(["-c", config, "deploy", "--release-id", uniqueRelease("race-b")]),
    ]);
    const codes = [a.exitCode, b.exitCode].sort();
    expect(codes, a.all + b.all).toEqual([0, 1]);
    const loser = a.exitCode === 1 ? a : b;
    expect(loser.stderr).toMatch(/deploy locked by \S+@\S+ \(pid \d+, deploy/);
    const winner = a.exitCode === 0 ? a : b;
    const release = /deploy (\S+) →/.exec(winner.stderr)?.[1];
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
    for (const name of SERVERS) expect(lockOn(name)).toBeUndefined();
  });

  it("a lock left by a dead process on this machine is stale and broken; a foreign one is not", async () => {
    plantLock("nexus-beta", {
      user: "ci",
      host: os.hostname(),
      pid: 2 ** 22 + 7,
      command: "deploy",
      time: "x",
      // As nexus writes it: this boot and this pid namespace, where the CLI can look at that pid.
      bootId: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
      pidNamespace: readlinkSync("/proc/self/ns/pid"),
    });
    const stale = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("stale")]);
    expect(stale.exitCode, stale.all).toBe(0);
    expect(stale.stderr).toContain("breaking a stale lock");

    plantLock("nexus-gamma", { user: "ana", host: "laptop-of-ana", pid: 4242, command: "deploy", time: "x" });
    const before = fleetSnapshot();
    const refused = await nexus(["-c", config, "deploy"]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("deploy locked by ana@laptop-of-ana (pid 4242");
    expect(fleetSnapshot()).toBe(before);

    // A holder on another machine cannot be seen to be gone: unlock asks for --force.
    const careful = await nexus(["-c", config, "unlock"]);
    expect(careful.exitCode, careful.all).toBe(1);
    expect(careful.stderr).toContain("--force");
    expect(lockOn("nexus-gamma")).toBeDefined();
    const unlock = await nexus(["-c", config, "unlock", "--force"]);
    expect(unlock.exitCode, unlock.all).toBe(0);
    expect(lockOn("nexus-gamma")).toBeUndefined();
  });

  it("keeps keepReleases releases, never the current one or the rollback target", async () => {
    const keep2 = writeConfig({ keepReleases: 2 });
    const ids = [uniqueRelease("k1"), uniqueRelease("k2"), uniqueRelease("k3")];
    for (const id of ids) {
      const run = await nexus(["-c", keep2, "deploy", "--release-id", id]);
      expect(run.exitCode, run.all).toBe(0);
    }
    for (const name of SERVERS) expect(releasesOnDisk(name)).toEqual(ids.slice(1).sort());
    const releases = await nexus(["-c", keep2, "releases"]);
    expect(releases.stdout).toMatch(new RegExp(`nexus-alpha\\s+${ids[2]}\\s+current`));
    expect(releases.stdout).toMatch(new RegExp(`nexus-alpha\\s+${ids[1]}\\s+previous`));
    const back = await nexus(["-c", keep2, "rollback"]);
    expect(back.exitCode, back.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(ids[1]);
  });

  it("a dry run leaves every server exactly as it was", async () => {
    const before = fleetSnapshot();
    const run = await nexus([
      "-c",
      writeConfig({ rolling: { canary: 1, pause: "2s" } }),
      "deploy",
      "--dry-run",
    ]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain("canary batch: drain nexus-alpha");
    expect(run.stdout).toContain("after a 2s pause, drain nexus-beta");
    expect(fleetSnapshot()).toBe(before);
  });
});
