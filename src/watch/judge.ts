import { type Counts, rate } from "./traffic.js";

export interface Thresholds {
  /** The highest failure ratio a watched server may show, whatever the others do. */
  maxFailureRatio: number;
  /** How many times the reference rate (the untouched servers', else the fleet's before the deploy) it may reach. */
  maxRatioToUntouched: number;
  /** The fewest requests a server must have served to be judged. */
  minRequests: number;
}

/** A /health probe failing this many times in a row during the window is a breach by itself. */
export const HEALTH_FAILS_IN_A_ROW = 2;

export interface WatchedTally extends Counts {
  server: string;
  /** Longest run of consecutive failed /health probes during the window. */
  healthFailStreak: number;
}

export type Threshold = "maxFailureRatio" | "untouched" | "baseline" | "health";

export interface ServerJudgement extends Counts {
  server: string;
  /** failures / requests (0 with no requests). */
  rate: number;
  /** pass; breach; "too-few": fewer than minRequests requests, so not judged on its rate. */
  result: "pass" | "breach" | "too-few";
  /** The failure ratio this server was allowed. */
  limit: number;
  /** The limit that decided: the highest of those that applied, or "health". */
  threshold: Threshold;
  /** One line for people. */
  reason: string;
}

export interface Judgement {
  /** breach: some server crossed its limit; extend: some server had too few requests (and the window was not extended yet); pass otherwise. */
  outcome: "pass" | "breach" | "extend";
  servers: ServerJudgement[];
  /** The untouched servers' rate over the same seconds, when they served enough requests to count. */
  untouchedRate?: number;
  /** The fleet's rate before the deploy, when enough requests were seen. */
  baselineRate?: number;
}

export interface JudgeInput {
  watched: readonly WatchedTally[];
  /** The servers not yet touched and in rotation, over the same seconds. */
  untouched: Counts;
  /** The whole fleet before the deploy, if measured. */
  baseline?: Counts;
  thresholds: Thresholds;
  /** The window was already extended once: too few requests now passes (with a warning). */
  extended: boolean;
}

/** A ratio as a percentage for people: "25%", "6.7%", "1%", "0.25%". */
export function percent(ratio: number): string {
  const value = ratio * 100;
  return `${Number(value.toFixed(value >= 10 ? 0 : value >= 1 ? 1 : 2))}%`;
}

/**
 * The judgement of one watch window. A server breaches when, having served at least
 * `minRequests`, its failure ratio is above every limit that applies: `maxFailureRatio`, and
 * `maxRatioToUntouched` times the reference rate. The reference is the untouched servers over the
 * same seconds (they see the same traffic, so a fleet-wide problem does not blame the release);
 * when they served too few requests (the last batch, a single server) it is the fleet before the
 * deploy. A run of failed /health probes is a breach whatever the traffic.
 */
export function judge(input: JudgeInput): Judgement {
  const { thresholds } = input;
  const enough = (c: Counts | undefined) => c !== undefined && c.requests >= thresholds.minRequests;
  const untouchedRate = enough(input.untouched) ? rate(input.untouched) : undefined;
  const baselineRate = enough(input.baseline) ? rate(input.baseline as Counts) : undefined;
  const reference =
    untouchedRate !== undefined
      ? { name: "untouched" as const, rate: untouchedRate, what: "the untouched servers' rate" }
      : baselineRate !== undefined
        ? { name: "baseline" as const, rate: baselineRate, what: "the fleet's rate before the deploy" }
        : undefined;
  const relative = reference ? reference.rate * thresholds.maxRatioToUntouched : 0;
  const limit = Math.max(thresholds.maxFailureRatio, relative);
  const threshold: Threshold =
    reference && relative > thresholds.maxFailureRatio ? reference.name : "maxFailureRatio";
  const limitText =
    threshold === "maxFailureRatio" || !reference
      ? `maxFailureRatio ${percent(thresholds.maxFailureRatio)}`
      : `${thresholds.maxRatioToUntouched}× ${reference.what} ${percent(reference.rate)}`;

  const servers = input.watched.map((tally): ServerJudgement => {
    const r = rate(tally);
    const counts = `${tally.failures} of ${tally.requests} request(s) failed (${percent(r)})`;
    const base = { server: tally.server, requests: tally.requests, failures: tally.failures, rate: r, limit };
    if (tally.healthFailStreak >= HEALTH_FAILS_IN_A_ROW) {
      return {
        ...base,
        result: "breach",
        threshold: "health",
        reason: `/health failed ${tally.healthFailStreak} times in a row during the watch; ${counts}`,
      };
    }
    // Still too few after the extension: judged as if minRequests had come, the rest all fine. A
    // server Nginx stopped sending to after its errors (fail_timeout) gets few requests.
    if (
      input.extended &&
      tally.requests < thresholds.minRequests &&
      tally.failures > limit * thresholds.minRequests
    ) {
      return {
        ...base,
        result: "breach",
        threshold,
        reason: `${counts}: fewer than minRequests ${thresholds.minRequests}, but more failures than ${limitText} of ${thresholds.minRequests} allows`,
      };
    }
    if (tally.requests < thresholds.minRequests) {
      return {
        ...base,
        result: "too-few",
        threshold,
        reason: `${counts}: fewer than minRequests ${thresholds.minRequests}, not judged`,
      };
    }
    return r > limit
      ? { ...base, result: "breach", threshold, reason: `${counts}, above ${limitText}` }
      : { ...base, result: "pass", threshold, reason: `${counts}, within ${limitText}` };
  });

  let outcome: Judgement["outcome"] = "pass";
  if (servers.some((s) => s.result === "breach")) outcome = "breach";
  else if (servers.some((s) => s.result === "too-few") && !input.extended) outcome = "extend";
  return { outcome, servers, untouchedRate, baselineRate };
}
