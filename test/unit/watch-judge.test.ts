import { describe, expect, it } from "vitest";
import { judge, type Thresholds, type WatchedTally } from "../../src/watch/judge.js";
import type { Counts, TrafficSource } from "../../src/watch/traffic.js";
import { watchWindow } from "../../src/watch/window.js";

const thresholds: Thresholds = { maxFailureRatio: 0.01, maxRatioToUntouched: 2, minRequests: 50 };
const tally = (server: string, requests: number, failures: number, healthFailStreak = 0): WatchedTally => ({
  server,
  requests,
  failures,
  healthFailStreak,
});
const none: Counts = { requests: 0, failures: 0 };

describe("the judgement of a watch window", () => {
  it("passes a server within maxFailureRatio", () => {
    const j = judge({ watched: [tally("a", 200, 2)], untouched: none, thresholds, extended: false });
    expect(j.outcome).toBe("pass");
    expect(j.servers[0]).toMatchObject({
      result: "pass",
      rate: 0.01,
      limit: 0.01,
      threshold: "maxFailureRatio",
    });
  });

  it("breaches above maxFailureRatio when the untouched servers are clean", () => {
    const j = judge({
      watched: [tally("a", 150, 10)],
      untouched: { requests: 300, failures: 0 },
      thresholds,
      extended: false,
    });
    expect(j.outcome).toBe("breach");
    expect(j.untouchedRate).toBe(0);
    expect(j.servers[0]).toMatchObject({
      result: "breach",
      threshold: "maxFailureRatio",
      requests: 150,
      failures: 10,
    });
    expect(j.servers[0]?.reason).toMatch(/10 of 150 request\(s\) failed \(6\.7%\), above maxFailureRatio 1%/);
  });

  it("does not blame the release for what the untouched servers suffer too", () => {
    const j = judge({
      watched: [tally("a", 100, 8)],
      untouched: { requests: 200, failures: 10 },
      thresholds,
      extended: false,
    });
    // 8% against 2 × 5%: within.
    expect(j.outcome).toBe("pass");
    expect(j.servers[0]).toMatchObject({ threshold: "untouched", limit: 0.1 });
  });

  it("breaches above maxRatioToUntouched times the untouched servers' rate", () => {
    const j = judge({
      watched: [tally("a", 100, 25)],
      untouched: { requests: 200, failures: 10 },
      thresholds,
      extended: false,
    });
    expect(j.outcome).toBe("breach");
    expect(j.servers[0]).toMatchObject({ threshold: "untouched", limit: 0.1 });
    expect(j.servers[0]?.reason).toMatch(/above 2× the untouched servers' rate 5%/);
  });

  it("uses the fleet's rate before the deploy when the untouched servers saw too little", () => {
    const input = {
      watched: [tally("a", 100, 5)],
      untouched: { requests: 10, failures: 0 },
      baseline: { requests: 1000, failures: 40 },
      thresholds,
      extended: false,
    };
    const j = judge(input);
    expect(j.untouchedRate).toBeUndefined();
    expect(j.baselineRate).toBe(0.04);
    expect(j.servers[0]).toMatchObject({ result: "pass", threshold: "baseline", limit: 0.08 });
    expect(judge({ ...input, watched: [tally("a", 100, 9)] }).outcome).toBe("breach");
  });

  it("asks for an extension below minRequests, then passes unjudged", () => {
    const input = { watched: [tally("a", 10, 0)], untouched: none, thresholds, extended: false };
    expect(judge(input).outcome).toBe("extend");
    const after = judge({ ...input, extended: true });
    expect(after.outcome).toBe("pass");
    expect(after.servers[0]?.result).toBe("too-few");
    expect(after.servers[0]?.reason).toMatch(/fewer than minRequests 50, not judged/);
  });

  it("still too few after the extension, but failing: judged as if minRequests had come", () => {
    // Nginx sends little to a server that failed (fail_timeout): 6 of 6 failed is a breach.
    const input = { watched: [tally("a", 6, 6)], untouched: none, thresholds, extended: false };
    expect(judge(input).outcome).toBe("extend");
    const after = judge({ ...input, extended: true });
    expect(after.outcome).toBe("breach");
    expect(after.servers[0]?.reason).toMatch(
      /6 of 6 request\(s\) failed .*fewer than minRequests 50, but more failures/,
    );
    // 0 of 6 (or 0.5 of 50 allowed at 1%: none) stays unjudged.
    expect(judge({ ...input, watched: [tally("a", 6, 0)], extended: true }).outcome).toBe("pass");
  });

  it("breaches on failed /health probes in a row, whatever the traffic", () => {
    const j = judge({
      watched: [tally("a", 2, 2, 2), tally("b", 100, 0)],
      untouched: none,
      thresholds,
      extended: false,
    });
    expect(j.outcome).toBe("breach");
    expect(j.servers.map((s) => [s.server, s.result, s.threshold])).toEqual([
      ["a", "breach", "health"],
      ["b", "pass", "maxFailureRatio"],
    ]);
  });
});

/** A traffic source fed from a script: each poll returns the next entry. */
function scripted(polls: Record<string, Counts>[]): TrafficSource & { marks: number } {
  let i = 0;
  return {
    marks: 0,
    async mark() {
      this.marks++;
    },
    async poll() {
      return new Map(Object.entries(polls[i++] ?? {}));
    },
  };
}

/** A fake clock: sleep advances it. */
function clock() {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

const base = {
  serverOf: (key: string) => ({ "10.0.0.1:3000": "a", "10.0.0.2:3000": "b", "10.0.0.3:3000": "c" })[key],
  watched: ["a"],
  untouched: ["b"],
  durationMs: 2000,
  pollMs: 1000,
  thresholds,
  signal: new AbortController().signal,
};

describe("the watch window", () => {
  it("adds up the polls of the watched and the untouched servers, ignoring the rest", async () => {
    const source = scripted([
      { "10.0.0.1:3000": { requests: 40, failures: 4 }, "10.0.0.2:3000": { requests: 40, failures: 0 } },
      {
        "10.0.0.1:3000": { requests: 40, failures: 4 },
        "10.0.0.2:3000": { requests: 40, failures: 0 },
        "10.0.0.3:3000": { requests: 99, failures: 99 },
      },
    ]);
    const result = await watchWindow({ ...base, source, probe: async () => true, ...clock() });
    expect(source.marks).toBe(1);
    expect(result.judgement.outcome).toBe("breach");
    expect(result.judgement.servers[0]).toMatchObject({ requests: 80, failures: 8, rate: 0.1 });
    expect(result.judgement.untouchedRate).toBe(0);
    expect(result.extended).toBe(false);
  });

  it("extends once when traffic is too low, then passes", async () => {
    const extensions: number[] = [];
    const result = await watchWindow({
      ...base,
      source: scripted([]),
      probe: async () => true,
      onExtend: (j) => extensions.push(j.servers[0]?.requests ?? -1),
      ...clock(),
    });
    expect(extensions).toEqual([0]);
    expect(result.extended).toBe(true);
    expect(result.seconds).toBe(4);
    expect(result.judgement.outcome).toBe("pass");
    expect(result.judgement.servers[0]?.result).toBe("too-few");
  });

  it("ends early on failed /health probes, counting each as a failed request", async () => {
    let probes = 0;
    const result = await watchWindow({
      ...base,
      durationMs: 30_000,
      source: scripted([]),
      probe: async () => probes++ === 0,
      ...clock(),
    });
    expect(result.seconds).toBe(3);
    expect(result.judgement.servers[0]).toMatchObject({
      result: "breach",
      threshold: "health",
      requests: 2,
      failures: 2,
    });
  });

  it("stops when interrupted", async () => {
    const controller = new AbortController();
    const c = clock();
    const result = await watchWindow({
      ...base,
      source: scripted([]),
      probe: async () => true,
      signal: controller.signal,
      now: c.now,
      sleep: async (ms) => {
        await c.sleep(ms);
        controller.abort();
      },
    });
    expect(result.interrupted).toBe(true);
    expect(result.judgement.outcome).not.toBe("extend");
  });
});
