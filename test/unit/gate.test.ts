import { describe, expect, it } from "vitest";
import { formatTimeline, runGate } from "../../src/health/gate.js";
import type { ProbeResult } from "../../src/health/probe.js";

function probes(...oks: boolean[]) {
  let i = 0;
  return async (startedAt: number): Promise<ProbeResult> => {
    const ok = oks[Math.min(i++, oks.length - 1)] ?? false;
    return {
      at: Date.now() - startedAt,
      ok,
      status: ok ? 200 : 503,
      latencyMs: 1,
      error: ok ? undefined : "HTTP 503",
    };
  };
}

describe("health gate", () => {
  it("passes after N consecutive passes, resetting the streak on a failure", async () => {
    const result = await runGate({
      passes: 3,
      intervalMs: 1,
      deadlineMs: 5000,
      probe: probes(true, true, false, true, true, true),
    });
    expect(result.ok).toBe(true);
    expect(result.timeline).toHaveLength(6);
  });

  it("fails at the deadline with the last error", async () => {
    const result = await runGate({ passes: 2, intervalMs: 5, deadlineMs: 60, probe: probes(false) });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/no 2 consecutive passing probes .*last: HTTP 503/);
  });

  it("at the deadline, also names what the process check finds (a crash loop between failing probes)", async () => {
    const result = await runGate({
      passes: 3,
      intervalMs: 5,
      deadlineMs: 60,
      probe: probes(false),
      verifyProcess: async () => "PM2 restarted the app 4 time(s) during the gate (crash loop)",
    });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(
      /no 3 consecutive passing probes .*last: HTTP 503.*; PM2 restarted the app 4 time/,
    );
  });

  it("fails when the process check finds a problem after the probes pass", async () => {
    const result = await runGate({
      passes: 1,
      intervalMs: 1,
      deadlineMs: 1000,
      probe: probes(true),
      verifyProcess: async () => "PM2 restarted the app 2 time(s) during the gate (crash loop)",
    });
    expect(result).toMatchObject({ ok: false, reason: expect.stringContaining("crash loop") });
  });

  it("when the probes fail, also reports what the process check finds (every reason that applies)", async () => {
    let checked = 0;
    const result = await runGate({
      passes: 3,
      intervalMs: 5,
      deadlineMs: 60,
      probe: probes(false),
      verifyProcess: async () => {
        checked++;
        return "PM2 restarted the app 4 time(s) during the gate (crash loop)";
      },
    });
    expect(checked).toBe(1);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(
      /^no 3 consecutive passing probes within 0s \(last: HTTP 503\); PM2 restarted the app 4 time\(s\) during the gate \(crash loop\)$/,
    );
  });

  it("a process check that fails or finds nothing leaves the probes' reason alone", async () => {
    for (const verifyProcess of [async () => undefined, async () => Promise.reject(new Error("ssh down"))]) {
      const result = await runGate({
        passes: 2,
        intervalMs: 5,
        deadlineMs: 30,
        probe: probes(false),
        verifyProcess,
      });
      expect(result.reason).toMatch(/^no 2 consecutive passing probes within 0s \(last: HTTP 503\)$/);
    }
  });

  it("keeps probing until the minimum uptime", async () => {
    const result = await runGate({
      passes: 1,
      intervalMs: 10,
      deadlineMs: 2000,
      minUptimeMs: 80,
      probe: probes(true),
    });
    expect(result.ok).toBe(true);
    expect(result.timeline.length).toBeGreaterThan(3);
  });

  it("stops when interrupted", async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await runGate({
      passes: 1,
      intervalMs: 1,
      deadlineMs: 1000,
      probe: probes(true),
      signal: controller.signal,
    });
    expect(result).toMatchObject({ ok: false, reason: "interrupted" });
  });

  it("prints a timeline", () => {
    const lines = formatTimeline([{ at: 1200, ok: false, status: 500, latencyMs: 12, error: "HTTP 500" }]);
    expect(lines[0]).toMatch(/\+1\.20s\s+FAIL\s+500\s+12ms\s+HTTP 500/);
  });
});
