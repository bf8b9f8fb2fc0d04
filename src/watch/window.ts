import { sleep as realSleep } from "../util/sleep.js";
import {
  HEALTH_FAILS_IN_A_ROW,
  type Judgement,
  type JudgeSettings,
  judge,
  type WatchedTally,
} from "./judge.js";
import { addCounts, type Counts, type TrafficSource } from "./traffic.js";

export interface WindowOptions {
  source: TrafficSource;
  /** The server a source key (an upstream address for Nginx) belongs to. */
  serverOf: (key: string) => string | undefined;
  /** The servers of the batch just put back in rotation. */
  watched: readonly string[];
  /** Servers not touched yet and in rotation: the control group. */
  untouched: readonly string[];
  baseline?: Counts;
  durationMs: number;
  /** Traffic in the first ms after the batch rejoined is read and dropped (/health is still probed). */
  warmupMs?: number;
  /** An inconclusive window is extended by durationMs at a time, up to this long in all (warm-up excluded). */
  maxDurationMs?: number;
  settings: JudgeSettings;
  /** One GET /health on a server; resolves false when it fails. */
  probe: (server: string) => Promise<boolean>;
  signal: AbortSignal;
  /** How often the source is read and /health probed (default: a quarter of the window, 250 ms to 1 s). */
  pollMs?: number;
  /** Told when the window is extended because some server could not be judged yet. */
  onExtend?: (judgement: Judgement) => void;
  /**
   * A source that could not be read for a whole window: "needs-human" ends the window as blind
   * (the batch is not judged), "wait" keeps trying, and watches a whole window once it can read.
   */
  onBlind?: "needs-human" | "wait";
  /** "wait": told at the end of each window it could not read (seconds since the window began, why). */
  onBlindWait?: (seconds: number, why: string) => void;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

export interface WindowResult {
  judgement: Judgement;
  /** How long the window lasted. */
  seconds: number;
  extended: boolean;
  /** Interrupted (Ctrl-C) before it ended: the judgement covers the seconds watched. */
  interrupted: boolean;
  /** The source could not be read for the whole window: why (the last error). Not judged then. */
  blind?: string;
}

/**
 * Watches a batch for `durationMs` after `warmupMs`: reads the balancer's per-server counts and
 * probes /health on each watched server every poll (a failed probe counts as a failed request). A
 * run of failed probes ends the window early as a fail. While the judgement is inconclusive, the
 * window goes on by `durationMs` at a time up to `maxDurationMs`; what then follows an
 * inconclusive judgement is the caller's to decide.
 *
 * A source that fails to read (an SSH hiccup, a log nexus may not read) is tried again at the
 * next poll, and its mark until it succeeds: what was read is judged. One that could not be read
 * once in the whole window (after the warm-up) is blind: not a fail (nothing says the release is
 * bad), the window ends with `blind` set, or with `onBlind: "wait"` goes on until it can read.
 */
export async function watchWindow(options: WindowOptions): Promise<WindowResult> {
  const sleep = options.sleep ?? realSleep;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? Math.min(1000, Math.max(250, Math.floor(options.durationMs / 4)));
  const tallies = new Map<string, WatchedTally>(
    options.watched.map((server) => [server, { server, requests: 0, failures: 0, healthFailStreak: 0 }]),
  );
  const streaks = new Map<string, number>();
  const untouchedSet = new Set(options.untouched);
  const untouched: Counts = { requests: 0, failures: 0 };

  let marked = false;
  let seen = false;
  let lastError = "";
  let waiting = false;
  /** Reads what happened since the last read: undefined when the source could not be read. */
  const read = async (): Promise<Map<string, Counts> | undefined> => {
    try {
      if (marked) return await options.source.poll();
      // Its mark failed: counting starts from a mark taken now.
      await options.source.mark();
      marked = true;
    } catch (error) {
      lastError = (error as Error).message.split("\n")[0] || String(error);
    }
    return undefined;
  };
  await read();
  const warmupEnd = now() + (options.warmupMs ?? 0);
  let started = warmupEnd;
  /** When the first window began: "wait" reports how long the traffic has not been read since. */
  let firstStarted = started;
  const longest = Math.max(options.durationMs, options.maxDurationMs ?? options.durationMs);
  let end = started + options.durationMs;
  let maxEnd = started + longest;
  let warming = (options.warmupMs ?? 0) > 0;
  let extended = false;
  const result = (interrupted: boolean): WindowResult => {
    const seconds = Math.max(0, now() - started) / 1000;
    return {
      judgement: judge({
        watched: [...tallies.values()],
        untouched,
        baseline: options.baseline,
        settings: options.settings,
        seconds,
      }),
      seconds,
      extended,
      interrupted,
    };
  };

  for (;;) {
    await sleep(Math.max(0, Math.min(pollMs, (warming ? warmupEnd : end) - now())), options.signal);
    if (options.signal.aborted) return result(true);
    const [counts, health] = await Promise.all([
      read(),
      Promise.all(options.watched.map(async (server) => [server, await options.probe(server)] as const)),
    ]);
    for (const [server, ok] of health) {
      const tally = tallies.get(server) as WatchedTally;
      const streak = ok ? 0 : (streaks.get(server) ?? 0) + 1;
      streaks.set(server, streak);
      tally.healthFailStreak = Math.max(tally.healthFailStreak, streak);
      if (!ok && !warming) addCounts(tally, { requests: 1, failures: 1 });
    }
    if ([...tallies.values()].some((t) => t.healthFailStreak >= HEALTH_FAILS_IN_A_ROW)) return result(false);
    if (warming) {
      // The traffic of the warm-up is dropped; the window's seconds start when it ends.
      if (now() < warmupEnd) continue;
      warming = false;
      started = now();
      firstStarted = started;
      end = started + options.durationMs;
      maxEnd = started + longest;
      continue;
    }
    if (counts) {
      seen = true;
      if (waiting) {
        // Sight is back after a blind window: a whole window is watched from now.
        waiting = false;
        started = now();
        end = started + options.durationMs;
        maxEnd = started + longest;
      }
    }
    for (const [key, value] of counts ?? []) {
      const server = options.serverOf(key);
      if (server === undefined) continue;
      const tally = tallies.get(server);
      if (tally) addCounts(tally, value);
      else if (untouchedSet.has(server)) addCounts(untouched, value);
    }
    if (now() < end) continue;
    if (!seen) {
      const why = lastError || "no read of the balancer's traffic succeeded";
      if (options.onBlind !== "wait") return { ...result(false), blind: why };
      waiting = true;
      options.onBlindWait?.((now() - firstStarted) / 1000, why);
      end += options.durationMs;
      maxEnd = end + longest - options.durationMs;
      continue;
    }
    const outcome = result(false);
    if (outcome.judgement.verdict !== "inconclusive" || end >= maxEnd) return outcome;
    extended = true;
    end = Math.min(end + options.durationMs, maxEnd);
    options.onExtend?.(outcome.judgement);
  }
}
