import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { lockColumn } from "../../src/commands/status.js";
import { type HolderProbe, isLiveHere, isStale, newHolder } from "../../src/deploy/lock.js";

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

describe("a lock holder's liveness", () => {
  const probe = (over: Partial<HolderProbe> = {}): HolderProbe => ({
    hostname: "ci",
    linux: true,
    bootId: "boot-1",
    pidNamespace: "pid:[4026531836]",
    signal: () => "gone",
    startTime: () => undefined,
    ...over,
  });
  const lock = (over: Record<string, unknown> = {}) =>
    JSON.stringify({
      host: "ci",
      pid: 42,
      token: "abcdef0123",
      bootId: "boot-1",
      pidNamespace: "pid:[4026531836]",
      startTime: "1000",
      ...over,
    });

  it("is gone when its pid is, in the same boot and pid namespace", () => {
    expect(isStale(lock(), probe())).toBe(true);
    expect(isLiveHere(lock(), probe())).toBe(false);
  });

  it("cannot be told gone from another pid namespace, another boot, or without the marks: alive", () => {
    expect(isStale(lock({ pidNamespace: "pid:[4026532173]" }), probe())).toBe(false);
    expect(isStale(lock({ bootId: "boot-2" }), probe())).toBe(false);
    expect(isStale(lock({ bootId: undefined, pidNamespace: undefined }), probe())).toBe(false);
    expect(isStale(lock(), probe({ pidNamespace: undefined }))).toBe(false);
    expect(isStale(lock({ host: "other" }), probe())).toBe(false);
    // Not "live here" either: nexus cannot look at it, so recover asks for --force.
    expect(isLiveHere(lock({ pidNamespace: "pid:[4026532173]" }), probe({ signal: () => "running" }))).toBe(
      false,
    );
  });

  it("a pid now running another process (started at another time) is gone; the same start time is alive", () => {
    const running = { signal: () => "running" as const };
    expect(isStale(lock(), probe({ ...running, startTime: () => "2000" }))).toBe(true);
    expect(isStale(lock(), probe({ ...running, startTime: () => "1000" }))).toBe(false);
    expect(isLiveHere(lock(), probe({ ...running, startTime: () => "1000" }))).toBe(true);
    // /proc cannot tell (another namespace's /proc): alive.
    expect(isStale(lock(), probe(running))).toBe(false);
  });

  it("without pid namespaces (macOS), hostname and pid tell, as before", () => {
    const mac = probe({ linux: false, bootId: undefined, pidNamespace: undefined });
    expect(isStale(lock({ bootId: undefined, pidNamespace: undefined }), mac)).toBe(true);
    expect(isStale(lock(), mac)).toBe(false);
  });

  it("records this process's marks", () => {
    const h = newHolder("deploy");
    if (process.platform === "linux") {
      expect(h.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(h.pidNamespace).toMatch(/^pid:\[\d+\]$/);
      expect(h.startTime).toMatch(/^\d+$/);
      expect(isLiveHere(JSON.stringify(h))).toBe(true);
    }
  });
});
