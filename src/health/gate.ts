import { sleep } from "../util/sleep.js";
import type { ProbeResult } from "./probe.js";

/**
 * Until the new process first answers (any HTTP status), it is probed this often: a refused
 * connection costs the app nothing, and each probe saved here is time out of rotation. Only for
 * the first seconds: an app that never binds is not probed 50 times a second until the deadline.
 */
const UNTIL_ANSWER_INTERVAL_MS = 20;
const UNTIL_ANSWER_WINDOW_MS = 2000;

export interface GateOptions {
  /** Consecutive passing probes needed. */
  passes: number;
  intervalMs: number;
  deadlineMs: number;
  /**
   * How long the app may take to start listening (health.startTimeout): until it first answers
   * (any HTTP status), probes that find nothing listening count against this, not the deadline,
   * which then starts at the first answer. Undefined: one deadline from the start.
   */
  startTimeoutMs?: number;
  /**
   * Asked about once a second while the app has not answered yet: a reason when the process
   * crashed (a crash loop), which fails the gate at once rather than at the start timeout.
   */
  crashed?: () => Promise<string | undefined>;
  /** Keep probing until at least this long after the start, even once enough probes passed. */
  minUptimeMs?: number;
  probe: (startedAt: number) => Promise<ProbeResult>;
  /**
   * Checked once the probes pass, and when they do not pass in time: returns a reason to fail,
   * e.g. PM2 restarted the process during the gate (a crash-looping app can answer between
   * crashes, or, on a loaded machine, not in time for the probes).
   */
  verifyProcess?: () => Promise<string | undefined>;
  signal?: AbortSignal;
}

export interface GateResult {
  ok: boolean;
  reason?: string;
  timeline: ProbeResult[];
  ms: number;
}

/**
 * Once the app first answers (within `startTimeoutMs`, when given), N consecutive passing probes
 * within a deadline, at least `minUptimeMs` after the start, and a
 * process check. The check (an SSH round trip, and a PM2 call unless the restart's connection is
 * open) runs beside the probe that can complete the gate, not after it: it samples the process
 * no earlier than the minimum uptime and the start of that probe, and counts only if the probe
 * passes.
 */
export async function runGate(options: GateOptions): Promise<GateResult> {
  const startedAt = Date.now();
  const minUptime = options.minUptimeMs ?? 0;
  const startLimit = options.startTimeoutMs;
  const timeline: ProbeResult[] = [];
  let streak = 0;
  let answered = false;
  // When the deadline starts: at the first answer when there is a start timeout.
  let deadlineFrom: number | undefined = startLimit === undefined ? startedAt : undefined;
  let crashCheckedAt = startedAt;
  // The crash check in flight, and what the last one found.
  let crashCheck: Promise<void> | undefined;
  let crash: string | undefined;
  for (;;) {
    if (options.signal?.aborted) return done(false, "interrupted");
    if (deadlineFrom === undefined) {
      if (Date.now() - startedAt >= (startLimit ?? 0)) return done(false, notListening());
      if (crash) return done(false, `crashed before listening: ${crash}`);
      checkCrash();
    } else if (Date.now() - deadlineFrom >= options.deadlineMs) break;
    const canComplete = streak + 1 >= options.passes && Date.now() - startedAt >= minUptime;
    const check = canComplete ? options.verifyProcess?.() : undefined;
    // Unused when this probe fails; its error, if any, surfaces only when it is awaited.
    check?.catch(() => {});
    const probeStart = Date.now();
    const result = await options.probe(startedAt);
    timeline.push(result);
    if (result.status !== undefined && !answered) {
      answered = true;
      deadlineFrom ??= startedAt + result.at;
    }
    streak = result.ok ? streak + 1 : 0;
    const elapsed = Date.now() - startedAt;
    if (streak >= options.passes && elapsed >= minUptime) {
      const problem = await (check ?? options.verifyProcess?.());
      return problem ? done(false, problem) : done(true);
    }
    // Intervals run from one probe's start to the next's: a probe's own round trip (one on the
    // kept forwarded connection, two when it opens one) is not added to each interval.
    const wait = sleep(
      Math.max(0, nextWait(elapsed, streak, answered) - (Date.now() - probeStart)),
      options.signal,
    );
    // A crash check that ends during the wait is acted on at once.
    await (crashCheck && !answered ? Promise.race([wait, crashCheck]) : wait);
  }
  const last = timeline.at(-1);
  const since = startLimit === undefined ? "" : " of first answering";
  const probes = `no ${options.passes} consecutive passing probes within ${Math.round(options.deadlineMs / 1000)}s${since}${last?.error ? ` (last: ${last.error})` : ""}`;
  // Every reason that applies, so the report does not depend on which one a loaded machine hit first.
  const problem = await options.verifyProcess?.().catch(() => undefined);
  return done(false, problem ? `${probes}; ${problem}` : probes);

  function notListening(): string {
    const last = timeline.at(-1);
    // Through SSH too, nothing listening is ECONNREFUSED: sshd fails the channel's open with it.
    return `not listening after ${seconds(startLimit ?? 0)} (health.startTimeout): no probe was answered${last?.error ? ` (last: ${last.error})` : ""}`;
  }

  /**
   * Asks whether the process crashed, about once a second until the app answers: beside the
   * probes, which do not wait for its round trip (and PM2 call) to go on finding the app listening.
   */
  function checkCrash(): void {
    if (!options.crashed || crashCheck || Date.now() - crashCheckedAt < 1000) return;
    crashCheckedAt = Date.now();
    crashCheck = options
      .crashed()
      .catch(() => undefined)
      .then((reason) => {
        crash ??= reason;
        crashCheck = undefined;
      });
  }

  /**
   * Probes `intervalMs` apart; faster while a new process has not answered yet, and once the
   * passes are in, just past the minimum uptime rather than a full interval later.
   */
  function nextWait(elapsed: number, streak: number, answered: boolean): number {
    if (!answered && elapsed < UNTIL_ANSWER_WINDOW_MS)
      return Math.min(options.intervalMs, UNTIL_ANSWER_INTERVAL_MS);
    if (streak >= options.passes) return Math.max(1, Math.min(options.intervalMs, minUptime - elapsed + 1));
    return options.intervalMs;
  }

  function done(ok: boolean, reason?: string): GateResult {
    return { ok, reason, timeline, ms: Date.now() - startedAt };
  }
}

/** 2500 → "2.5s", 30000 → "30s". */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

/** The probe timeline as lines, for a failed gate's report. */
export function formatTimeline(timeline: readonly ProbeResult[], max = 12): string[] {
  const shown = timeline.slice(-max);
  const lines = shown.map(
    (p) =>
      `  +${(p.at / 1000).toFixed(2)}s  ${p.ok ? "pass" : "FAIL"}  ${p.status ?? "---"}  ${String(p.latencyMs).padStart(4)}ms  ${p.error ?? (p.release ? `release ${p.release}` : "")}`,
  );
  if (timeline.length > shown.length)
    lines.unshift(`  (${timeline.length - shown.length} earlier probes not shown)`);
  return lines;
}
