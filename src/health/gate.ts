import { sleep } from "../util/sleep.js";
import type { ProbeResult } from "./probe.js";

export interface GateOptions {
  /** Consecutive passing probes needed. */
  passes: number;
  intervalMs: number;
  deadlineMs: number;
  /** Keep probing until at least this long after the start, even once enough probes passed. */
  minUptimeMs?: number;
  probe: (startedAt: number) => Promise<ProbeResult>;
  /**
   * Checked once the probes pass, and again at the end: returns a reason to fail, e.g. PM2
   * restarted the process during the gate (a crash-looping app can answer between crashes).
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

/** N consecutive passing probes within a deadline, then a process check. */
export async function runGate(options: GateOptions): Promise<GateResult> {
  const startedAt = Date.now();
  const timeline: ProbeResult[] = [];
  let streak = 0;
  while (Date.now() - startedAt < options.deadlineMs) {
    if (options.signal?.aborted) return done(false, "interrupted");
    const result = await options.probe(startedAt);
    timeline.push(result);
    streak = result.ok ? streak + 1 : 0;
    if (streak >= options.passes && Date.now() - startedAt >= (options.minUptimeMs ?? 0)) {
      const problem = await options.verifyProcess?.();
      if (!problem) return done(true);
      return done(false, problem);
    }
    await sleep(options.intervalMs, options.signal);
  }
  const last = timeline.at(-1);
  // Every reason that applies, whatever the timing: a crash loop is named even when the app
  // never answered long enough between crashes for the probes to pass.
  const problem = await options.verifyProcess?.().catch(() => undefined);
  return done(
    false,
    `no ${options.passes} consecutive passing probes within ${Math.round(options.deadlineMs / 1000)}s${last?.error ? ` (last: ${last.error})` : ""}${problem ? `; ${problem}` : ""}`,
  );

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
