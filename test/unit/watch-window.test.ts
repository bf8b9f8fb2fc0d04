import { describe, expect, it } from "vitest";
import type { JudgeSettings } from "../../src/watch/judge.js";
import type { Counts, TrafficSource } from "../../src/watch/traffic.js";
import { watchWindow } from "../../src/watch/window.js";

/** The watch window when the balancer's traffic cannot be read: blind, never a breach. */

const settings: JudgeSettings = {
  minRequests: 10,
  significance: 0.001,
  maxFailureRatio: 0.01,
  maxRatioToUntouched: 2,
  latency: false,
  maxLatencyRatio: 1.25,
  maxLatencyIncrease: 100,
};

/** A source whose reads follow a script: each entry is one read (mark or poll), an Error fails it. */
function scripted(reads: (Record<string, Counts> | Error)[]): TrafficSource & { marks: number } {
  let i = 0;
  const next = () => {
    const entry = reads[i++] ?? {};
    if (entry instanceof Error) throw entry;
    return entry;
  };
  return {
    marks: 0,
    async mark() {
      this.marks++;
      next();
    },
    async poll() {
      return new Map(Object.entries(next()));
    },
  };
}

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
  serverOf: (key: string) => ({ "10.0.0.1:3000": "a", "10.0.0.2:3000": "b" })[key],
  watched: ["a"],
  untouched: ["b"],
  durationMs: 2000,
  pollMs: 1000,
  settings,
  probe: async () => true,
  signal: new AbortController().signal,
};

const lost = () => new Error("reading /var/log/nginx/access.log failed (exit 1): Permission denied");
const busy = { "10.0.0.1:3000": { requests: 20, failures: 0 } };

describe("a watch window that cannot read the balancer's traffic", () => {
  it("is blind when no read succeeds in the whole window, mark included: not a breach", async () => {
    const result = await watchWindow({ ...base, source: scripted([lost(), lost(), lost()]), ...clock() });
    expect(result.blind).toBe("reading /var/log/nginx/access.log failed (exit 1): Permission denied");
    expect(result.judgement.verdict).not.toBe("fail");
  });

  it("is blind when its mark worked but no poll did", async () => {
    const result = await watchWindow({ ...base, source: scripted([{}, lost(), lost()]), ...clock() });
    expect(result.blind).toMatch(/Permission denied/);
  });

  it("retries a failed mark and judges what it could read", async () => {
    const source = scripted([lost(), {}, busy]);
    const result = await watchWindow({ ...base, source, ...clock() });
    expect(source.marks).toBe(2);
    expect(result.blind).toBeUndefined();
    expect(result.judgement.servers[0]).toMatchObject({ requests: 20, failures: 0, verdict: "pass" });
  });

  it("judges on the polls that worked when others failed", async () => {
    const result = await watchWindow({
      ...base,
      source: scripted([{}, lost(), { "10.0.0.1:3000": { requests: 20, failures: 10 } }]),
      ...clock(),
    });
    expect(result.blind).toBeUndefined();
    expect(result.judgement.verdict).toBe("fail");
  });

  it('with onBlind "wait", keeps trying, then watches a whole window once it can read', async () => {
    const waits: number[] = [];
    const c = clock();
    const result = await watchWindow({
      ...base,
      source: scripted([{}, lost(), lost(), lost(), lost(), busy, busy]),
      onBlind: "wait",
      onBlindWait: (seconds) => waits.push(seconds),
      ...c,
    });
    expect(waits).toEqual([2, 4]);
    expect(result.blind).toBeUndefined();
    expect(result.judgement.servers[0]).toMatchObject({ requests: 40, verdict: "pass" });
    // Sight came back at 5 s: a whole window (2 s) from then, judged over those 2 s.
    expect(c.now()).toBe(7000);
    expect(result.seconds).toBe(2);
  });
});
