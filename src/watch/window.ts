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
export function watchWindow(options: WindowOptions): Promise<WindowResult> {
  return new WatchWindow(options).run();
}

/** One window's state: the tallies, the source's mark, and the window's moving ends. */
class WatchWindow {
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly pollMs: number;
  private readonly longest: number;
  private readonly tallies: Map<string, WatchedTally>;
  private readonly streaks = new Map<string, number>();
  private readonly untouchedSet: Set<string>;
  private readonly untouched: Counts = { requests: 0, failures: 0 };
  private marked = false;
  /** Some read succeeded after the warm-up. */
  private seen = false;
  private lastError = "";
  /** "wait": the last window could not read; the next read starts a whole window. */
  private waiting = false;
  private warmupEnd = 0;
  private warming: boolean;
  private started = 0;
  /** When the first window began: "wait" reports how long the traffic has not been read since. */
  private firstStarted = 0;
  private end = 0;
  private maxEnd = 0;
  private extended = false;

  constructor(private readonly options: WindowOptions) {
    this.sleep = options.sleep ?? realSleep;
    this.now = options.now ?? Date.now;
    this.pollMs = options.pollMs ?? Math.min(1000, Math.max(250, Math.floor(options.durationMs / 4)));
    this.longest = Math.max(options.durationMs, options.maxDurationMs ?? options.durationMs);
    this.tallies = new Map(
      options.watched.map((server) => [server, { server, requests: 0, failures: 0, healthFailStreak: 0 }]),
    );
    this.untouchedSet = new Set(options.untouched);
    this.warming = (options.warmupMs ?? 0) > 0;
  }

  async run(): Promise<WindowResult> {
    const { options } = this;
    await this.read();
    this.warmupEnd = this.now() + (options.warmupMs ?? 0);
    this.startWindow(this.warmupEnd);
    for (;;) {
      const wait = (this.warming ? this.warmupEnd : this.end) - this.now();
      await this.sleep(Math.max(0, Math.min(this.pollMs, wait)), options.signal);
      if (options.signal.aborted) return this.result(true);
      const [counts, health] = await Promise.all([this.read(), this.probeAll()]);
      this.countHealth(health);
      if ([...this.tallies.values()].some((t) => t.healthFailStreak >= HEALTH_FAILS_IN_A_ROW))
        return this.result(false);
      if (this.warming) {
        // The traffic of the warm-up is dropped; the window's seconds start when it ends.
        if (this.now() < this.warmupEnd) continue;
        this.warming = false;
        this.startWindow();
        continue;
      }
      this.countTraffic(counts);
      if (this.now() < this.end) continue;
      const ended = this.windowEnded();
      if (ended) return ended;
    }
  }

  /** A window begins (now, or when the warm-up ends): its end, and how far extensions may take it. */
  private startWindow(at = this.now(), first = true): void {
    this.started = at;
    if (first) this.firstStarted = this.started;
    this.end = this.started + this.options.durationMs;
    this.maxEnd = this.started + this.longest;
  }

  /** Reads what happened since the last read: undefined when the source could not be read. */
  private async read(): Promise<Map<string, Counts> | undefined> {
    try {
      if (this.marked) return await this.options.source.poll();
      // Its mark failed: counting starts from a mark taken now.
      await this.options.source.mark();
      this.marked = true;
    } catch (error) {
      this.lastError = (error as Error).message.split("\n")[0] || String(error);
    }
    return undefined;
  }

  private probeAll(): Promise<(readonly [string, boolean])[]> {
    return Promise.all(
      this.options.watched.map(async (server) => [server, await this.options.probe(server)] as const),
    );
  }

  /** A failed probe counts as a failed request (not during the warm-up), and lengthens its streak. */
  private countHealth(health: (readonly [string, boolean])[]): void {
    for (const [server, ok] of health) {
      const tally = this.tallies.get(server) as WatchedTally;
      const streak = ok ? 0 : (this.streaks.get(server) ?? 0) + 1;
      this.streaks.set(server, streak);
      tally.healthFailStreak = Math.max(tally.healthFailStreak, streak);
      if (!ok && !this.warming) addCounts(tally, { requests: 1, failures: 1 });
    }
  }

  private countTraffic(counts: Map<string, Counts> | undefined): void {
    if (counts) {
      this.seen = true;
      if (this.waiting) {
        // Sight is back after a blind window: a whole window is watched from now.
        this.waiting = false;
        this.startWindow(this.now(), false);
      }
    }
    for (const [key, value] of counts ?? []) {
      const server = this.options.serverOf(key);
      if (server === undefined) continue;
      const tally = this.tallies.get(server);
      if (tally) addCounts(tally, value);
      else if (this.untouchedSet.has(server)) addCounts(this.untouched, value);
    }
  }

  /** The window's time is up: its result, or undefined when it goes on (blind and waiting, or extended). */
  private windowEnded(): WindowResult | undefined {
    const { options } = this;
    if (!this.seen) {
      const why = this.lastError || "no read of the balancer's traffic succeeded";
      if (options.onBlind !== "wait") return { ...this.result(false), blind: why };
      this.waiting = true;
      options.onBlindWait?.((this.now() - this.firstStarted) / 1000, why);
      this.end += options.durationMs;
      this.maxEnd = this.end + this.longest - options.durationMs;
      return undefined;
    }
    const outcome = this.result(false);
    if (outcome.judgement.verdict !== "inconclusive" || this.end >= this.maxEnd) return outcome;
    this.extended = true;
    this.end = Math.min(this.end + options.durationMs, this.maxEnd);
    options.onExtend?.(outcome.judgement);
    return undefined;
  }

  private result(interrupted: boolean): WindowResult {
    const seconds = Math.max(0, this.now() - this.started) / 1000;
    return {
      judgement: judge({
        watched: [...this.tallies.values()],
        untouched: this.untouched,
        baseline: this.options.baseline,
        settings: this.options.settings,
        seconds,
      }),
      seconds,
      extended: this.extended,
      interrupted,
    };
  }
}
