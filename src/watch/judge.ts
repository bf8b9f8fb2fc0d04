import { binomialGreater, countAbove, fisherGreater, mannWhitneyGreater, quantile } from "./stats.js";
import { type Counts, rate } from "./traffic.js";

/**
 * The judge of a watch window, as a canary analysis does it: each watched server against a
 * reference (the untouched servers over the same seconds, else the fleet before the deploy), on
 * two metrics, each by a one-sided test, a minimum effect and a minimum sample:
 *
 * - errors: Fisher's exact test on the failure counts; the effect must be at least
 *   `maxRatioToUntouched` times the reference's rate and `maxFailureRatio` above it;
 * - latency: at p50 the Mann-Whitney rank test, at p95 and p99 Fisher's test on how many
 *   requests were slower than the reference's own p95/p99; the effect must be at least
 *   `maxLatencyRatio` times the reference's percentile and `maxLatencyIncrease` above it.
 *
 * A metric fails when its effect is large enough and its p-value below `significance`; it is
 * inconclusive when the sample is below `minRequests`, or the effect is large enough but not
 * significant (worse, not proven); it passes otherwise. Pure: no I/O, no clock.
 */

export interface JudgeSettings {
  /** The fewest requests a server (and its reference) must have served to be judged. */
  minRequests: number;
  /** The p-value below which a difference counts (one-sided). */
  significance: number;
  /** Errors' minimum effect, absolute: how far above the reference's failure ratio a server may go. */
  maxFailureRatio: number;
  /** Errors' minimum effect, relative: how many times the reference's failure ratio a server may reach. */
  maxRatioToUntouched: number;
  /** Judge latency at all (when the source has per-request times). */
  latency: boolean;
  /** Latency's minimum effect, relative: how many times the reference's percentile a server may reach. */
  maxLatencyRatio: number;
  /** Latency's minimum effect, absolute, in ms. */
  maxLatencyIncrease: number;
}

/** What a balancer saw of a server or a group of servers over some seconds. */
export interface Sample extends Counts {}

/** A /health probe failing this many times in a row during the window is a fail by itself. */
export const HEALTH_FAILS_IN_A_ROW = 2;

export interface WatchedTally extends Sample {
  server: string;
  /** Longest run of consecutive failed /health probes during the window. */
  healthFailStreak: number;
}

export type Verdict = "pass" | "fail" | "inconclusive";
export type Metric = "errors" | "latency" | "health";
export type Reference = "untouched" | "baseline" | "none";
/** The error limit that was highest (kept from the first judge, for the `watch` event). */
export type Threshold = "maxFailureRatio" | "untouched" | "baseline" | "health";

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  /** How many response times they were computed from. */
  samples: number;
}

export interface MetricResult {
  verdict: Verdict;
  /** The p-value of the test that decided (the smallest one tested, on a pass). */
  p?: number;
  /** Words, without the server name. */
  text: string;
  /** The numbers alone, for after another metric's words: "p99 412 ms vs 188 ms". */
  short: string;
}

export interface ServerJudgement extends Counts {
  server: string;
  verdict: Verdict;
  /** What decided a fail or an inconclusive. */
  metric?: Metric;
  /** failures / requests (0 with no requests). */
  rate: number;
  /** The p-value of the deciding test, when one decided. */
  p?: number;
  reference: Reference;
  /** The failure ratio above which the error effect is large enough. */
  limit: number;
  threshold: Threshold;
  errors: MetricResult;
  /** Undefined when the source has no per-request times, or latency is not judged. */
  latencyResult?: MetricResult;
  latency?: Percentiles;
  referenceLatency?: Percentiles;
  /** The fleet's before the deploy, when the reference is the untouched servers (for the words). */
  baselineLatency?: Percentiles;
  /** One line for people: why, with the numbers. */
  reason: string;
}

export interface Judgement {
  /** fail: some server failed; inconclusive: none failed, some could not be judged; pass otherwise. */
  verdict: Verdict;
  servers: ServerJudgement[];
  reference: Reference;
  /** The untouched servers' rate over the same seconds, when they served enough requests to count. */
  untouchedRate?: number;
  /** The fleet's rate before the deploy, when enough requests were seen. */
  baselineRate?: number;
}

export interface JudgeInput {
  watched: readonly WatchedTally[];
  /** The servers not yet touched and in rotation, over the same seconds. */
  untouched: Sample;
  /** The fleet before the deploy, if measured. */
  baseline?: Sample;
  settings: JudgeSettings;
  /** How long the window has lasted, for the words. */
  seconds: number;
}

/** A ratio as a percentage for people: "25%", "6.7%", "1%", "0.25%". */
export function percent(ratio: number): string {
  const value = ratio * 100;
  return `${Number(value.toFixed(value >= 10 ? 0 : value >= 1 ? 1 : 2))}%`;
}

/** 1290 → "1,290". */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** "p = 0.0003", "p < 0.0001". */
export function formatP(p: number): string {
  if (p < 0.0001) return "p < 0.0001";
  return `p = ${Number(p.toPrecision(p < 0.01 ? 1 : 2))}`;
}

export function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function seconds(s: number): string {
  return `${Number(s.toFixed(s >= 10 ? 0 : 1))} s`;
}

export function percentiles(latencies: readonly number[]): Percentiles | undefined {
  if (latencies.length === 0) return undefined;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    samples: sorted.length,
  };
}

interface ReferenceSample {
  name: Reference;
  sample?: Sample;
  /** "on the others over 30 s", "before the deploy". */
  where: string;
}

function pickReference(input: JudgeInput): ReferenceSample {
  const { minRequests } = input.settings;
  if (input.untouched.requests >= minRequests)
    return {
      name: "untouched",
      sample: input.untouched,
      where: `on the others over ${seconds(input.seconds)}`,
    };
  if (input.baseline && input.baseline.requests >= minRequests)
    return { name: "baseline", sample: input.baseline, where: "before the deploy" };
  return { name: "none", where: "" };
}

/** The judgement of one watch window (see the top of this file). */
export function judge(input: JudgeInput): Judgement {
  const reference = pickReference(input);
  const servers = input.watched.map((tally) => judgeServer(tally, reference, input));
  const verdict: Verdict = servers.some((s) => s.verdict === "fail")
    ? "fail"
    : servers.some((s) => s.verdict === "inconclusive")
      ? "inconclusive"
      : "pass";
  const { minRequests } = input.settings;
  return {
    verdict,
    servers,
    reference: reference.name,
    untouchedRate: input.untouched.requests >= minRequests ? rate(input.untouched) : undefined,
    baselineRate: input.baseline && input.baseline.requests >= minRequests ? rate(input.baseline) : undefined,
  };
}

function judgeServer(tally: WatchedTally, reference: ReferenceSample, input: JudgeInput): ServerJudgement {
  const { settings } = input;
  const errors = judgeErrors(tally, reference, settings);
  const referenceLatency = reference.sample?.latencies ? percentiles(reference.sample.latencies) : undefined;
  const latency = tally.latencies ? percentiles(tally.latencies) : undefined;
  const latencyResult =
    settings.latency && tally.latencies && reference.sample?.latencies
      ? judgeLatency(tally.latencies, reference.sample.latencies, reference, settings)
      : undefined;
  const baselineLatency =
    reference.name === "untouched" &&
    input.baseline?.latencies &&
    input.baseline.requests >= settings.minRequests
      ? percentiles(input.baseline.latencies)
      : undefined;
  const refRate = reference.sample ? rate(reference.sample) : 0;
  const relative = refRate * settings.maxRatioToUntouched;
  const absolute = refRate + settings.maxFailureRatio;
  const base = {
    server: tally.server,
    requests: tally.requests,
    failures: tally.failures,
    rate: rate(tally),
    reference: reference.name,
    limit: Math.max(relative, absolute),
    threshold: (reference.name !== "none" && relative > absolute
      ? reference.name
      : "maxFailureRatio") as Threshold,
    errors,
    latencyResult,
    latency,
    referenceLatency,
    baselineLatency,
  };
  const latencyNote =
    latency && referenceLatency ? `p99 ${ms(latency.p99)} vs ${ms(referenceLatency.p99)}` : undefined;
  // A latency fail also says what the fleet's p99 was before the deploy, when that was measured.
  const before = baselineLatency ? ` (${ms(baselineLatency.p99)} before the deploy)` : "";

  if (tally.healthFailStreak >= HEALTH_FAILS_IN_A_ROW) {
    return {
      ...base,
      verdict: "fail",
      metric: "health",
      threshold: "health",
      reason: `/health failed ${tally.healthFailStreak} times in a row during the watch; ${errors.short}`,
    };
  }
  const results: [Metric, MetricResult][] = [["errors", errors]];
  if (latencyResult) results.push(["latency", latencyResult]);
  const deciding =
    results.find(([, r]) => r.verdict === "fail") ?? results.find(([, r]) => r.verdict === "inconclusive");
  if (deciding) {
    const [metric, result] = deciding;
    const others = results.filter(([m]) => m !== metric).map(([, r]) => r.short);
    if (metric === "errors" && !latencyResult && latencyNote) others.push(latencyNote);
    const text = metric === "latency" && result.verdict === "fail" ? `${result.text}${before}` : result.text;
    return {
      ...base,
      verdict: result.verdict,
      metric,
      p: result.p,
      reason: [text, ...others].join("; "),
    };
  }
  const words = [errors.text, ...(latencyResult ? [latencyResult.short] : latencyNote ? [latencyNote] : [])];
  return { ...base, verdict: "pass", reason: words.join("; ") };
}

function judgeErrors(tally: Sample, reference: ReferenceSample, settings: JudgeSettings): MetricResult {
  const { minRequests, significance } = settings;
  const r = rate(tally);
  const observed = `errors ${percent(r)} (${count(tally.failures)} of ${count(tally.requests)})`;
  // Below minRequests, judged as if the rest of minRequests had come and all succeeded: a server
  // the balancer stopped sending to after its errors gets few requests, and 6 of 6 failed is a fail.
  const small = tally.requests < minRequests;
  const judged: Counts = small ? { requests: minRequests, failures: tally.failures } : tally;
  const judgedRate = rate(judged);
  let p: number;
  let large: boolean;
  let against: string;
  let short = observed;
  if (reference.sample) {
    const refRate = rate(reference.sample);
    p = fisherGreater(judged.failures, judged.requests, reference.sample.failures, reference.sample.requests);
    large =
      judgedRate >= refRate * settings.maxRatioToUntouched &&
      judgedRate - refRate >= settings.maxFailureRatio;
    against = `vs ${percent(refRate)} ${reference.where}`;
    short = `${observed} vs ${percent(refRate)}`;
  } else {
    // Nothing to compare with: more than maxFailureRatio fail, beyond chance.
    p = binomialGreater(judged.failures, judged.requests, settings.maxFailureRatio);
    large = judgedRate > settings.maxFailureRatio;
    against = `vs maxFailureRatio ${percent(settings.maxFailureRatio)} (no reference)`;
  }
  if (large && p < significance)
    return { verdict: "fail", p, text: `${observed} ${against}, ${formatP(p)}`, short };
  if (small)
    return { verdict: "inconclusive", p, text: `${observed}: fewer than minRequests ${minRequests}`, short };
  if (large)
    return {
      verdict: "inconclusive",
      p,
      text: `${observed} ${against}, ${formatP(p)}: worse, not proven (significance ${significance})`,
      short,
    };
  return { verdict: "pass", p, text: `${observed} ${against}`, short };
}

const TAIL_PERCENTILES = [
  ["p99", 0.99],
  ["p95", 0.95],
] as const;

function judgeLatency(
  watched: readonly number[],
  reference: readonly number[],
  where: ReferenceSample,
  settings: JudgeSettings,
): MetricResult {
  const { minRequests, significance, maxLatencyRatio, maxLatencyIncrease } = settings;
  if (watched.length < minRequests || reference.length < minRequests) {
    const text = `latency: ${count(watched.length)} response time(s), ${count(reference.length)} ${where.where}: fewer than minRequests ${minRequests}`;
    return { verdict: "inconclusive", text, short: text };
  }
  const w = [...watched].sort((a, b) => a - b);
  const r = [...reference].sort((a, b) => a - b);
  const checks = [
    ...TAIL_PERCENTILES.map(([name, q]) => {
      const threshold = quantile(r, q);
      // How many were slower than the reference's own percentile: about 1% (5%) of the reference's.
      const p = fisherGreater(countAbove(w, threshold), w.length, countAbove(r, threshold), r.length);
      return { name, mine: quantile(w, q), theirs: threshold, p };
    }),
    { name: "p50", mine: quantile(w, 0.5), theirs: quantile(r, 0.5), p: mannWhitneyGreater(w, r).p },
  ];
  const judged = checks.map((c) => ({
    ...c,
    large: c.mine >= c.theirs * maxLatencyRatio && c.mine - c.theirs >= maxLatencyIncrease,
  }));
  const short = (c: (typeof judged)[number]) => `${c.name} ${ms(c.mine)} vs ${ms(c.theirs)}`;
  const words = (c: (typeof judged)[number]) => `${short(c)} ${where.where}, ${formatP(c.p)}`;
  const failed = judged.find((c) => c.large && c.p < significance);
  if (failed) return { verdict: "fail", p: failed.p, text: words(failed), short: short(failed) };
  const unproven = judged.find((c) => c.large);
  if (unproven)
    return {
      verdict: "inconclusive",
      p: unproven.p,
      text: `${words(unproven)}: slower, not proven (significance ${significance})`,
      short: short(unproven),
    };
  const p99 = judged[0] as (typeof judged)[number];
  const text = `${short(p99)} ${where.where}`;
  return { verdict: "pass", p: Math.min(...judged.map((c) => c.p)), text, short: short(p99) };
}
