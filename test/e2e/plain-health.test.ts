import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentRelease,
  fixture,
  nexus,
  readUpstream,
  SERVERS,
  throughLb,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";

/** An existing app whose /health answers a plain "OK" (no JSON, no release). */
describe('health.checkRelease "auto" (the default) with a /health that answers plain OK', () => {
  const plain = { app: { root: fixture("app-plain-health") } };

  beforeAll(async () => {
    // The previous release reports its release, so a failed strict gate can restore it.
    const run = await nexus(["-c", writeConfig(), "deploy", "--release-id", uniqueRelease("before-plain")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  afterAll(async () => {
    // Leave the usual fixture app serving for the test files that follow.
    const run = await nexus(["-c", writeConfig(), "deploy", "--release-id", uniqueRelease("after-plain")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("with checkRelease true the same app fails the gate, the message names the setting, the fleet stays", async () => {
    const before = SERVERS.map((name) => currentRelease(name));
    const run = await nexus([
      "-c",
      writeConfig({ ...plain, health: { checkRelease: true, deadline: "6s" } }),
      "deploy",
      "--release-id",
      uniqueRelease("plain-strict"),
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/reports no release \(health\.checkRelease is true/);
    expect(SERVERS.map((name) => currentRelease(name))).toEqual(before);
  });

  it("deploys with the default config, and says once how to report the release", async () => {
    const release = uniqueRelease("plain");
    const run = await nexus(["-c", writeConfig(plain), "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
    expect(readUpstream()).not.toMatch(/\bdown;/);
    const answers = await throughLb(6);
    expect(answers.every((a) => a.status === 200 && a.release === release)).toBe(true);
    const hints = run.all.split("\n").filter((line) => line.includes("reports no release"));
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatch(/NEXUS_RELEASE/);
  });
});
