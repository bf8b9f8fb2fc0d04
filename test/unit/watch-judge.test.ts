import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { tallyLines } from "../../src/balancer/nginx/watch/access-log.js";
import { describeEvent, summaryTable } from "../../src/report/format.js";
import { type JudgeSettings, judge, type WatchedTally } from "../../src/watch/judge.js";
import type { Counts, TrafficSource } from "../../src/watch/traffic.js";
import { watchWindow } from "../../src/watch/window.js";

/** rolling.watch's defaults. */
const settings: JudgeSettings = {
  minRequests: 50,
  significance: 0.001,
  maxFailureRatio: 0.01,
  maxRatioToUntouched: 2,
  latency: true,
  maxLatencyRatio: 1.25,
  maxLatencyIncrease: 100,
};
const tally = (server: string, requests: number, failures: number, healthFailStreak = 0): WatchedTally => ({
  server,
  requests,
  failures,
  healthFailStreak,
});
const none: Counts = { requests: 0, failures: 0 };
const seconds = 30;

describe("the judgement of a watch window: errors", () => {
  it("fails 2% against 0.1% on the others, and says so in words with the p-value", () => {
    const j = judge({
      watched: [tally("b", 1290, 31)],
      untouched: { requests: 2580, failures: 3 },
      settings,
      seconds,
    });
    expect(j.verdict).toBe("fail");
    expect(j.servers[0]).toMatchObject({ verdict: "fail", metric: "errors", reference: "untouched" });
    expect(j.servers[0]?.p).toBeLessThan(1e-6);
    expect(j.servers[0]?.reason).toBe(
      "errors 2.4% (31 of 1,290) vs 0.12% on the others over 30 s, p < 0.0001",
    );
  });

  it("passes a difference below the minimum effect, however significant", () => {
    // 0.5% vs 0.1%: 5× and p tiny, but only 0.4 points above: below maxFailureRatio's 1 point.
    const j = judge({
      watched: [tally("b", 20_000, 100)],
      untouched: { requests: 40_000, failures: 40 },
      settings,
      seconds,
    });
    expect(j.verdict).toBe("pass");
    expect(j.servers[0]?.reason).toMatch(/^errors 0\.5% \(100 of 20,000\) vs 0\.1% on the others over 30 s$/);
  });

  it("does not blame the release for what the untouched servers suffer too", () => {
    // 8% against 5%: less than 2×.
    const j = judge({
      watched: [tally("a", 100, 8)],
      untouched: { requests: 200, failures: 10 },
      settings,
      seconds,
    });
    expect(j.verdict).toBe("pass");
    expect(j.servers[0]).toMatchObject({ threshold: "untouched", limit: 0.1 });
  });

  it("a large effect that is not significant yet is inconclusive: worse, not proven", () => {
    // 2 of 60 against 0 of 120: 3.3 points above, p = 0.11.
    const j = judge({
      watched: [tally("a", 60, 2)],
      untouched: { requests: 120, failures: 0 },
      settings,
      seconds,
    });
    expect(j.verdict).toBe("inconclusive");
    expect(j.servers[0]?.metric).toBe("errors");
    expect(j.servers[0]?.reason).toMatch(
      /errors 3\.3% \(2 of 60\) vs 0% on the others over 30 s, p = 0\.11: worse, not proven/,
    );
  });

  it("uses the fleet before the deploy when the untouched servers saw too little", () => {
    const input = {
      watched: [tally("a", 400, 16)],
      untouched: { requests: 10, failures: 0 },
      baseline: { requests: 1000, failures: 40 },
      settings,
      seconds,
    };
    const j = judge(input);
    expect(j.reference).toBe("baseline");
    expect(j.untouchedRate).toBeUndefined();
    expect(j.baselineRate).toBe(0.04);
    expect(j.servers[0]).toMatchObject({ verdict: "pass", threshold: "baseline", limit: 0.08 });
    const worse = judge({ ...input, watched: [tally("a", 400, 60)] });
    expect(worse.verdict).toBe("fail");
    expect(worse.servers[0]?.reason).toMatch(/vs 4% before the deploy, p < 0\.0001$/);
  });

  it("with no reference at all, tests the rate against maxFailureRatio", () => {
    expect(judge({ watched: [tally("a", 500, 4)], untouched: none, settings, seconds }).verdict).toBe("pass");
    const j = judge({ watched: [tally("a", 500, 25)], untouched: none, settings, seconds });
    expect(j.verdict).toBe("fail");
    expect(j.servers[0]?.reason).toMatch(/vs maxFailureRatio 1% \(no reference\)/);
  });

  it("below minRequests: inconclusive, unless the failures alone are enough for minRequests requests", () => {
    const quiet = judge({
      watched: [tally("a", 10, 0)],
      untouched: { requests: 500, failures: 0 },
      settings,
      seconds,
    });
    expect(quiet.verdict).toBe("inconclusive");
    expect(quiet.servers[0]?.reason).toMatch(/errors 0% \(0 of 10\): fewer than minRequests 50/);
    // One failure in one request is no proof (judged as 1 of 50: p ≈ 0.09).
    expect(
      judge({ watched: [tally("a", 1, 1)], untouched: { requests: 500, failures: 0 }, settings, seconds })
        .verdict,
    ).toBe("inconclusive");
    // Nginx sends little to a server that failed (fail_timeout): 6 of 6 failed is a fail.
    const failing = judge({
      watched: [tally("a", 6, 6)],
      untouched: { requests: 500, failures: 0 },
      settings,
      seconds,
    });
    expect(failing.verdict).toBe("fail");
  });

  it("fails on failed /health probes in a row, whatever the traffic", () => {
    const j = judge({
      watched: [tally("a", 2, 2, 2), tally("b", 100, 0)],
      untouched: { requests: 500, failures: 0 },
      settings,
      seconds,
    });
    expect(j.verdict).toBe("fail");
    expect(j.servers.map((s) => [s.server, s.verdict, s.metric])).toEqual([
      ["a", "fail", "health"],
      ["b", "pass", undefined],
    ]);
    expect(j.servers[0]?.reason).toMatch(/^\/health failed 2 times in a row during the watch; errors 100%/);
  });
});

/** A seeded generator (mulberry32): the same numbers on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The sandbox's mixed load as the balancer times it: two GETs (~1-3 ms, a few slow ones when the
 * machine is busy) for one POST (the app holds it 100-150 ms). `slowEvery`: every nth request
 * is `slowMs` slower.
 */
function mixedLatencies(n: number, random: () => number, slowEvery = 0, slowMs = 0): number[] {
  return Array.from({ length: n }, (_, i) => {
    const post = i % 3 === 2;
    let value = post ? 100 + Math.floor(random() * 51) : 1 + Math.floor(-Math.log(1 - random()) * 1.5);
    if (random() < 0.01) value += Math.floor(random() * 60); // scheduling noise
    if (slowEvery > 0 && i % slowEvery === slowEvery - 1) value += slowMs;
    return value;
  });
}

function sample(n: number, failures: number, latencies: number[]): Counts {
  return { requests: n, failures, latencies };
}

describe("the judgement of a watch window: latency", () => {
  it("fails a release 150 ms slower at p99, errors unchanged, naming p99 in words", () => {
    const random = seeded(1);
    const j = judge({
      watched: [
        { server: "b", healthFailStreak: 0, ...sample(1500, 1, mixedLatencies(1500, random, 10, 150)) },
      ],
      untouched: sample(3000, 3, mixedLatencies(3000, random)),
      settings,
      seconds,
    });
    expect(j.verdict).toBe("fail");
    const b = j.servers[0];
    expect(b).toMatchObject({ verdict: "fail", metric: "latency" });
    expect(b?.latency?.p99).toBeGreaterThan((b?.referenceLatency?.p99 ?? 0) + 100);
    expect(b?.reason).toMatch(
      /^p99 \d+ ms vs \d+ ms on the others over 30 s, p < 0\.0001; errors 0\.07% \(1 of 1,500\) vs 0\.1%$/,
    );
    // With the fleet's log from before the deploy, the words say its p99 then too.
    const withBaseline = judge({
      watched: [
        { server: "b", healthFailStreak: 0, ...sample(1500, 1, mixedLatencies(1500, random, 10, 150)) },
      ],
      untouched: sample(3000, 3, mixedLatencies(3000, random)),
      baseline: sample(1500, 2, mixedLatencies(1500, random)),
      settings,
      seconds,
    });
    expect(withBaseline.servers[0]?.reason).toMatch(
      /^p99 \d+ ms vs \d+ ms on the others over 30 s, p < 0\.0001 \(\d+ ms before the deploy\); errors /,
    );
    expect(withBaseline.servers[0]?.baselineLatency?.samples).toBe(1500);
  });

  it("fails a release slower on every request through the rank test (p50)", () => {
    const random = seeded(2);
    const j = judge({
      watched: [{ server: "b", healthFailStreak: 0, ...sample(600, 0, mixedLatencies(600, random, 1, 120)) }],
      untouched: sample(1200, 0, mixedLatencies(1200, random)),
      settings: { ...settings },
      seconds,
    });
    expect(j.servers[0]?.verdict).toBe("fail");
    expect(j.servers[0]?.reason).toMatch(/^p99 /);
  });

  it("passes the same release as the others, and a slowdown below the minimum effect", () => {
    const random = seeded(3);
    const same = judge({
      watched: [{ server: "b", healthFailStreak: 0, ...sample(1500, 0, mixedLatencies(1500, random)) }],
      untouched: sample(3000, 0, mixedLatencies(3000, random)),
      settings,
      seconds,
    });
    expect(same.verdict).toBe("pass");
    expect(same.servers[0]?.reason).toMatch(
      /^errors 0% \(0 of 1,500\) vs 0% on the others over 30 s; p99 \d+ ms vs \d+ ms$/,
    );
    // 40 ms slower on every request: significant, but under maxLatencyIncrease (100 ms).
    const slightly = judge({
      watched: [
        { server: "b", healthFailStreak: 0, ...sample(1500, 0, mixedLatencies(1500, random, 1, 40)) },
      ],
      untouched: sample(3000, 0, mixedLatencies(3000, random)),
      settings,
      seconds,
    });
    expect(slightly.verdict).toBe("pass");
  });

  it("is not judged when the source has no response times (HAProxy), nor when turned off", () => {
    const random = seeded(4);
    const watched = [
      { server: "b", healthFailStreak: 0, ...sample(600, 0, mixedLatencies(600, random, 1, 300)) },
    ];
    const off = judge({
      watched,
      untouched: sample(1200, 0, mixedLatencies(1200, random)),
      settings: { ...settings, latency: false },
      seconds,
    });
    expect(off.verdict).toBe("pass");
    expect(off.servers[0]?.latencyResult).toBeUndefined();
    const blind = judge({
      watched: [tally("b", 600, 0)],
      untouched: { requests: 1200, failures: 0 },
      settings,
      seconds,
    });
    expect(blind.verdict).toBe("pass");
    expect(blind.servers[0]?.latency).toBeUndefined();
  });
});

describe("the judge on recorded traffic (test/fixtures/watch)", () => {
  /** A recorded window: alpha (127.0.7.11) watched, beta and gamma untouched. */
  function recorded(name: string) {
    const counts = new Map<string, Counts>();
    const text = readFileSync(new URL(`../fixtures/watch/${name}.log`, import.meta.url), "utf8");
    expect(tallyLines(text.split("\n"), counts)).toBe(0);
    const untouched: Counts = { requests: 0, failures: 0, latencies: [] };
    for (const address of ["127.0.7.12:3000", "127.0.7.13:3000"]) {
      const c = counts.get(address) as Counts;
      untouched.requests += c.requests;
      untouched.failures += c.failures;
      untouched.latencies?.push(...(c.latencies ?? []));
    }
    const alpha = counts.get("127.0.7.11:3000") as Counts;
    return judge({
      watched: [{ server: "alpha", healthFailStreak: 0, ...alpha }],
      untouched,
      settings,
      seconds: 10,
    });
  }

  it("passes a good release", () => {
    const j = recorded("good");
    expect(j.verdict).toBe("pass");
    expect(j.servers[0]?.reason).toMatch(
      /^errors 0% \(0 of 503\) vs 0% on the others over 10 s; p99 \d+ ms vs \d+ ms$/,
    );
  });

  it("fails the release with 2% of 5xx on its errors", () => {
    const j = recorded("errors-2pct");
    expect(j.servers[0]).toMatchObject({ verdict: "fail", metric: "errors", requests: 538, failures: 11 });
    expect(j.servers[0]?.reason).toMatch(
      /^errors 2% \(11 of 538\) vs 0% on the others over 10 s, p < 0\.0001; p99 /,
    );
  });

  it("fails the release 150 ms slower at p99 on its latency", () => {
    const j = recorded("slow-p99");
    expect(j.servers[0]).toMatchObject({ verdict: "fail", metric: "latency" });
    expect(j.servers[0]?.reason).toMatch(
      /^p99 2\d\d ms vs 1\d\d ms on the others over 10 s, p < 0\.0001; errors 0% /,
    );
  });
});

describe("the judge's false alarms on synthetic noise (seeded)", () => {
  /**
   * Windows where the watched server and the others serve the same release: every fail is a false
   * alarm. Up to three looks per window (the window and two extensions), as a watch that keeps
   * coming up inconclusive takes. docs/how-it-works.md quotes these numbers (measured on larger
   * runs of the same simulation: 0 in 20,000 windows at 0.1% errors; 0 in 5,000 at 1%; 4 in
   * 5,000 at 5% with 100 requests; 1 in 2,000 with heavy-tailed latency).
   */
  function falseAlarms(windows: number, perServer: number, errorRate: number, tail: number, seed: number) {
    const random = seeded(seed);
    const failures = (n: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (random() < errorRate) k++;
      return k;
    };
    // `tail`: the share of requests that the busy machine delays by up to 300 ms more.
    const latencies = (n: number) =>
      tail > 0 ? mixedLatencies(n, random).map((v) => (random() < tail ? v + random() * 300 : v)) : undefined;
    let fails = 0;
    let inconclusive = 0;
    for (let w = 0; w < windows; w++) {
      let verdict = "inconclusive";
      for (let look = 1; look <= 3 && verdict === "inconclusive"; look++) {
        const n = perServer * look;
        verdict = judge({
          watched: [
            { server: "b", healthFailStreak: 0, requests: n, failures: failures(n), latencies: latencies(n) },
          ],
          untouched: { requests: 2 * n, failures: failures(2 * n), latencies: latencies(2 * n) },
          settings,
          seconds,
        }).verdict;
      }
      if (verdict === "fail") fails++;
      if (verdict === "inconclusive") inconclusive++;
    }
    return { fails, inconclusive };
  }

  // Each takes ~1 s of CPU: the timeout is for a machine that others load too, not a speed limit.
  it("errors: no alarm in 5,000 windows of 100 requests per server at 0.1%, nor in 1,000 of 1,500 at 1%", () => {
    expect(falseAlarms(5000, 100, 0.001, 0, 11)).toEqual({ fails: 0, inconclusive: 0 });
    expect(falseAlarms(1000, 1500, 0.01, 0, 12).fails).toBe(0);
  }, 60_000);

  it("latency: at most 1 alarm in 500 windows of 100 requests per server with a heavy tail", () => {
    const { fails, inconclusive } = falseAlarms(500, 100, 0.001, 0.05, 13);
    expect(fails).toBeLessThanOrEqual(1);
    expect(inconclusive).toBeLessThanOrEqual(2);
  }, 60_000);
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
  settings: { ...settings, minRequests: 20 },
  signal: new AbortController().signal,
};

describe("the watch window", () => {
  it("adds up the polls of the watched and the untouched servers, ignoring the rest", async () => {
    const source = scripted([
      { "10.0.0.1:3000": { requests: 40, failures: 8 }, "10.0.0.2:3000": { requests: 40, failures: 0 } },
      {
        "10.0.0.1:3000": { requests: 40, failures: 8 },
        "10.0.0.2:3000": { requests: 40, failures: 0 },
        "10.0.0.3:3000": { requests: 99, failures: 99 },
      },
    ]);
    const result = await watchWindow({ ...base, source, probe: async () => true, ...clock() });
    expect(source.marks).toBe(1);
    expect(result.judgement.verdict).toBe("fail");
    expect(result.judgement.servers[0]).toMatchObject({ requests: 80, failures: 16, rate: 0.2 });
    expect(result.judgement.untouchedRate).toBe(0);
    expect(result.extended).toBe(false);
  });

  it("drops the warm-up's traffic and counts the window's seconds after it", async () => {
    const source = scripted([
      { "10.0.0.1:3000": { requests: 40, failures: 40 }, "10.0.0.2:3000": { requests: 40, failures: 0 } },
      { "10.0.0.1:3000": { requests: 40, failures: 0 }, "10.0.0.2:3000": { requests: 40, failures: 0 } },
      { "10.0.0.1:3000": { requests: 40, failures: 0 }, "10.0.0.2:3000": { requests: 40, failures: 0 } },
    ]);
    const result = await watchWindow({
      ...base,
      warmupMs: 1000,
      source,
      probe: async () => true,
      ...clock(),
    });
    expect(result.judgement.verdict).toBe("pass");
    expect(result.judgement.servers[0]).toMatchObject({ requests: 80, failures: 0 });
    expect(result.seconds).toBe(2);
  });

  it("extends an inconclusive window by its duration up to maxDurationMs, then returns it inconclusive", async () => {
    const extensions: number[] = [];
    const result = await watchWindow({
      ...base,
      maxDurationMs: 5000,
      source: scripted([]),
      probe: async () => true,
      onExtend: (j) => extensions.push(j.servers[0]?.requests ?? -1),
      ...clock(),
    });
    expect(extensions).toEqual([0, 0]);
    expect(result.extended).toBe(true);
    expect(result.seconds).toBe(5);
    expect(result.judgement.verdict).toBe("inconclusive");
  });

  it("stops extending once the verdict is in", async () => {
    const quiet = {
      "10.0.0.1:3000": { requests: 5, failures: 0 },
      "10.0.0.2:3000": { requests: 40, failures: 0 },
    };
    const busy = {
      "10.0.0.1:3000": { requests: 40, failures: 0 },
      "10.0.0.2:3000": { requests: 40, failures: 0 },
    };
    const result = await watchWindow({
      ...base,
      maxDurationMs: 10_000,
      source: scripted([quiet, quiet, busy]),
      probe: async () => true,
      ...clock(),
    });
    expect(result.seconds).toBe(4);
    expect(result.judgement.verdict).toBe("pass");
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
      verdict: "fail",
      metric: "health",
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
    expect(result.extended).toBe(false);
  });
});

describe("reporting the watch", () => {
  it("describes a fail with the judge's words", () => {
    const text = describeEvent({
      type: "watch",
      server: "b",
      result: "breach",
      verdict: "fail",
      metric: "errors",
      p: 0.0003,
      reference: "untouched",
      requests: 1290,
      failures: 31,
      rate: 31 / 1290,
      limit: 0.011,
      threshold: "maxFailureRatio",
      untouchedRate: 0.001,
      seconds: 30.04,
      message: "errors 2.4% (31 of 1,290) vs 0.1% on the others over 30 s, p = 0.0003; p99 412 ms vs 188 ms",
    });
    expect(text).toBe(
      "b: watch FAILED (30.0s): errors 2.4% (31 of 1,290) vs 0.1% on the others over 30 s, p = 0.0003; p99 412 ms vs 188 ms",
    );
  });

  it("adds the watched column only when a watch ran", () => {
    expect(summaryTable([{ server: "a", result: "deployed" }])[0]).not.toMatch(/watched/);
    const table = summaryTable([
      {
        server: "a",
        result: "rolled back",
        watched: { requests: 104, failures: 7, rate: 7 / 104, p99: 412.4 },
      },
      { server: "b", result: "not reached" },
    ]);
    expect(table[0]).toMatch(/out of rotation\s+watched\s+note/);
    expect(table[2]).toMatch(/6\.7% \(7\/104\), p99 412 ms/);
    expect(table[3]).toMatch(/ - *$/);
  });
});
