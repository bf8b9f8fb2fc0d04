import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { lockColumn } from "../../src/commands/status.js";
import { newHolder } from "../../src/deploy/lock.js";

const journal = { command: "deploy", release: "r2", previous: "r1", pid: 1, host: "ci", time: "" };
const holder = (changes: Record<string, unknown>) =>
  JSON.stringify({ ...newHolder("deploy", "r2"), ...changes });
// A pid that just ended: nothing runs under it (a reuse this soon would take 4 million forks).
const deadPid = spawnSync("true").pid as number;

describe("nexus status's lock column", () => {
  it("a journal under a live lock is a command under way, not an interrupted one", () => {
    expect(lockColumn({ journal, lock: holder({}) })).toMatch(
      /^deploy of r2 under way: .* \(pid \d+, deploy r2\)/,
    );
    expect(lockColumn({ journal, lock: holder({}) })).not.toContain("recover");
  });

  it("a lock from another machine may be a running CI job: under way, with what to do if it is dead", () => {
    expect(lockColumn({ journal, lock: holder({ host: "ci-runner-7" }) })).toMatch(
      /^deploy of r2 under way: .*@ci-runner-7 .*\(if that command is dead: nexus recover --force\)$/,
    );
  });

  it("a journal with no lock, or with its holder gone from this machine, is interrupted", () => {
    expect(lockColumn({ journal })).toBe("INTERRUPTED deploy of r2: run nexus recover");
    expect(lockColumn({ journal, lock: holder({ pid: deadPid }) })).toBe(
      "INTERRUPTED deploy of r2: run nexus recover",
    );
  });

  it("a lock alone names its holder; nothing is -", () => {
    expect(lockColumn({ lock: holder({}) })).toMatch(/\(pid \d+, deploy r2\) since /);
    expect(lockColumn({})).toBe("-");
  });
});
