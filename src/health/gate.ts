import { sleep } from "../util/sleep.js";
import type { ProbeResult } from "./probe.js";

/**
 * Until the new process first answers (any HTTP status), it is probed this often: a refused
 * connection costs the app nothing, and each probe saved here is time out of rotation.
 */
const UNTIL_ANSWER_INTERVAL_MS = 20;

export interface GateOptions {
  /** Consecutive passing probes needed. */
  passes: number;
  intervalMs: number;
  deadlineMs: number;
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
 * N consecutive passing probes within a deadline, at least `minUptimeMs` after the start, and a
 * process check. The check (an SSH round trip and a PM2 call, ~0.15 s) runs during the wait
 * before the probe that can complete the gate, not after it: its result counts only if that
 * probe passes, and a process that crashed in between fails that probe.
 */
export async function runGate(options: GateOptions): Promise<GateResult> {
  const startedAt = Date.now();
  const minUptime = options.minUptimeMs ?? 0;
  const timeline: ProbeResult[] = [];
  let streak = 0;
  let answered = false;
  let check: Promise<string | undefined> | undefined;
  while (Date.now() - startedAt < options.deadlineMs) {
    if (options.signal?.aborted) return done(false, "interrupted");
    const result = await options.probe(startedAt);
    timeline.push(result);
    answered ||= result.status !== undefined;
    streak = result.ok ? streak + 1 : 0;
    const elapsed = Date.now() - startedAt;
    if (streak >= options.passes && elapsed >= minUptime) {
      const problem = await (check ?? options.verifyProcess?.());
      return problem ? done(false, problem) : done(true);
    }
    check = undefined;
    const wait = nextWait(elapsed, streak, answered);
    if (options.verifyProcess && streak >= 1 && streak + 1 >= options.passes && elapsed + wait >= minUptime) {
      check = options.verifyProcess();
      // Unused when the next probe fails; its error, if any, surfaces only when it is awaited.
      check.catch(() => {});
    }
    await sleep(wait, options.signal);
  }
  const last = timeline.at(-1);
  const probes = `no ${options.passes} consecutive passing probes within ${Math.round(options.deadlineMs / 1000)}s${last?.error ? ` (last: ${last.error})` : ""}`;
  // Every reason that applies, so the report does not depend on which one a loaded machine hit first.
  const problem = await options.verifyProcess?.().catch(() => undefined);
  return done(false, problem ? `${probes}; ${problem}` : probes);

  /** Probes `intervalMs` apart; faster until the process answers, and no later than the minimum uptime once the passes are in. */
  function nextWait(elapsed: number, streak: number, answered: boolean): number {
    if (!answered) return Math.min(options.intervalMs, UNTIL_ANSWER_INTERVAL_MS);
    if (streak >= options.passes) return Math.max(1, Math.min(options.intervalMs, minUptime - elapsed));
    return options.intervalMs;
  }

  function done(ok: boolean, reason?: string): GateResult {
    return { ok, reason, timeline, ms: Date.now() - startedAt };
  }
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
