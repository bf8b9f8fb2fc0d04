import { afterEach, describe, expect, it, vi } from "vitest";
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

  it("runs the process check beside the probe that can complete the gate", async () => {
    const log: string[] = [];
    const passing = probes(true);
    const result = await runGate({
      passes: 2,
      intervalMs: 5,
      deadlineMs: 2000,
      probe: async (startedAt) => {
        log.push("probe");
        return passing(startedAt);
      },
      verifyProcess: async () => {
        log.push("check");
        return undefined;
      },
    });
    expect(result.ok).toBe(true);
    expect(log).toEqual(["probe", "check", "probe"]);
  });

  it("drops a check made before a probe that then fails, and checks again", async () => {
    const findings = ["the app restarted 1 time(s) during the gate (crash loop)", undefined];
    let checks = 0;
    const result = await runGate({
      passes: 2,
      intervalMs: 5,
      deadlineMs: 2000,
      probe: probes(true, false, true, true),
      verifyProcess: async () => findings[checks++],
    });
    expect(result.ok).toBe(true);
    expect(checks).toBe(2);
  });

  it("a problem found by the early check fails the gate once the last probe passes", async () => {
    const result = await runGate({
      passes: 2,
      intervalMs: 5,
      deadlineMs: 2000,
      probe: probes(true),
      verifyProcess: async () => "the app is errored (pid 12)",
    });
    expect(result).toMatchObject({ ok: false, reason: "the app is errored (pid 12)" });
  });

  describe("with a fake clock", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** Refused until `listensAt` ms after the gate starts, then passing. */
    const listeningAt =
      (listensAt: number) =>
      async (startedAt: number): Promise<ProbeResult> =>
        Date.now() - startedAt >= listensAt
          ? { at: Date.now() - startedAt, ok: true, status: 200, latencyMs: 1 }
          : {
              at: Date.now() - startedAt,
              ok: false,
              latencyMs: 1,
              error: "ECONNREFUSED: connection refused",
            };

    it("with a start timeout, an app that takes 6 s to listen passes a 2 s deadline: the deadline starts at its first answer", async () => {
      vi.useFakeTimers();
      const options = { passes: 3, intervalMs: 100, deadlineMs: 2000, probe: listeningAt(6000) };
      const slow = runGate({ ...options, startTimeoutMs: 10_000 });
      await vi.advanceTimersByTimeAsync(7000);
      expect(await slow).toMatchObject({ ok: true });
      // Without one, the same app fails at the deadline, counted from the restart.
      const once = runGate(options);
      await vi.advanceTimersByTimeAsync(7000);
      expect((await once).reason).toMatch(/^no 3 consecutive passing probes within 2s \(last: ECONNREFUSED/);
    });

    it('an app that never listens fails at the start timeout with "not listening after …"', async () => {
      vi.useFakeTimers();
      const gate = runGate({
        passes: 3,
        intervalMs: 100,
        deadlineMs: 60_000,
        startTimeoutMs: 3000,
        probe: listeningAt(Number.POSITIVE_INFINITY),
      });
      await vi.advanceTimersByTimeAsync(3500);
      const result = await gate;
      expect(result.reason).toBe(
        "not listening after 3s (health.startTimeout): no probe was answered (last: ECONNREFUSED: connection refused)",
      );
      expect(result.ms).toBeLessThan(3200);
    });

    it("an app that crash-loops before listening fails as soon as the crash is seen, not at the start timeout", async () => {
      vi.useFakeTimers();
      let asked = 0;
      const gate = runGate({
        passes: 3,
        intervalMs: 100,
        deadlineMs: 60_000,
        startTimeoutMs: 30_000,
        probe: listeningAt(Number.POSITIVE_INFINITY),
        crashed: async () =>
          ++asked >= 2 ? "the app restarted 2 time(s) during the gate (crash loop)" : undefined,
      });
      await vi.advanceTimersByTimeAsync(2500);
      const result = await gate;
      expect(result.reason).toBe(
        "crashed before listening: the app restarted 2 time(s) during the gate (crash loop)",
      );
    });

    it("the probes go on while a crash check is out (its round trip does not delay finding the app listening)", async () => {
      vi.useFakeTimers();
      let checks = 0;
      const gate = runGate({
        passes: 1,
        intervalMs: 100,
        deadlineMs: 60_000,
        startTimeoutMs: 30_000,
        probe: listeningAt(1200),
        // A slow check (a PM2 call far away), asked at 1 s, answered at 1.8 s.
        crashed: () => {
          checks++;
          return new Promise((resolve) => setTimeout(() => resolve(undefined), 800));
        },
      });
      await vi.advanceTimersByTimeAsync(2000);
      const result = await gate;
      expect(checks).toBe(1);
      expect(result.ok).toBe(true);
      // Found listening within a fast probe's interval of 1.2 s, not after the check at 1.8 s.
      expect(result.timeline.at(-1)?.at).toBeLessThan(1250);
    });

    it("once the app answers, a failing gate says it answered and what (deadline from the first answer)", async () => {
      vi.useFakeTimers();
      const gate = runGate({
        passes: 2,
        intervalMs: 100,
        deadlineMs: 1000,
        startTimeoutMs: 5000,
        probe: async (startedAt) =>
          Date.now() - startedAt < 2000
            ? {
                at: Date.now() - startedAt,
                ok: false,
                latencyMs: 1,
                error: "ECONNREFUSED: connection refused",
              }
            : {
                at: Date.now() - startedAt,
                ok: false,
                status: 503,
                latencyMs: 1,
                error: "HTTP 503: db down",
              },
      });
      await vi.advanceTimersByTimeAsync(4000);
      const result = await gate;
      expect(result.reason).toBe(
        "no 2 consecutive passing probes within 1s of first answering (last: HTTP 503: db down)",
      );
      expect(result.ms).toBeGreaterThanOrEqual(3000);
    });

    it("probes every 20 ms until the process first answers, then at the interval", async () => {
      vi.useFakeTimers();
      let calls = 0;
      const refusedThenPassing = async (startedAt: number): Promise<ProbeResult> => {
        calls++;
        const answering = calls > 5;
        return answering
          ? { at: Date.now() - startedAt, ok: true, status: 200, latencyMs: 1 }
          : { at: Date.now() - startedAt, ok: false, latencyMs: 1, error: "ECONNREFUSED" };
      };
      const gate = runGate({ passes: 3, intervalMs: 1000, deadlineMs: 60_000, probe: refusedThenPassing });
      await vi.advanceTimersByTimeAsync(100);
      expect(calls).toBe(6);
      await vi.advanceTimersByTimeAsync(1000);
      expect(calls).toBe(7);
      await vi.advanceTimersByTimeAsync(1000);
      const result = await gate;
      expect(result.ok).toBe(true);
      expect(result.timeline.map((p) => p.at)).toEqual([0, 20, 40, 60, 80, 100, 1100, 2100]);
    });

    it("once the passes are in, probes again at the minimum uptime rather than a full interval later", async () => {
      vi.useFakeTimers();
      const gate = runGate({
        passes: 1,
        intervalMs: 300,
        deadlineMs: 60_000,
        minUptimeMs: 500,
        probe: probes(true),
      });
      await vi.advanceTimersByTimeAsync(1000);
      const result = await gate;
      expect(result.ok).toBe(true);
      expect(result.timeline.map((p) => p.at)).toEqual([0, 300, 501]);
    });

    it("samples the process no earlier than the minimum uptime and the start of the last probe", async () => {
      vi.useFakeTimers();
      const checkedAt: number[] = [];
      const probedAt: number[] = [];
      const passing = probes(true);
      let startedAt = 0;
      const gate = runGate({
        passes: 3,
        intervalMs: 100,
        deadlineMs: 60_000,
        minUptimeMs: 500,
        probe: async (start) => {
          startedAt = start;
          probedAt.push(Date.now() - start);
          return passing(start);
        },
        verifyProcess: async () => {
          checkedAt.push(Date.now() - startedAt);
          return undefined;
        },
      });
      await vi.advanceTimersByTimeAsync(1000);
      expect((await gate).ok).toBe(true);
      expect(checkedAt).toHaveLength(1);
      expect(checkedAt[0]).toBeGreaterThanOrEqual(500);
      expect(checkedAt[0]).toBeGreaterThanOrEqual(probedAt.at(-1) as number);
    });

    it("probes at the interval once the fast window is over, for an app that never answers", async () => {
      vi.useFakeTimers();
      let calls = 0;
      const refused = async (startedAt: number): Promise<ProbeResult> => {
        calls++;
        return { at: Date.now() - startedAt, ok: false, latencyMs: 1, error: "ECONNREFUSED" };
      };
      const gate = runGate({ passes: 3, intervalMs: 500, deadlineMs: 12_000, probe: refused });
      await vi.advanceTimersByTimeAsync(12_000);
      expect((await gate).ok).toBe(false);
      // 2 s at 20 ms (~100 probes), then 10 s at 500 ms (~20): not 600.
      expect(calls).toBeGreaterThan(100);
      expect(calls).toBeLessThan(130);
    });
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
