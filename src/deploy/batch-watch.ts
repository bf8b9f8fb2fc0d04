import type { TrafficWatch } from "../balancer/driver.js";
import { BALANCER_DRIVERS, type BalancerConfig, driverFor } from "../balancer/drivers.js";
import { ConfigError } from "../config/errors.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit, WatchedRate } from "../events/events.js";
import { probeOnce } from "../health/probe.js";
import { ProbeAgent } from "../health/probe-agent.js";
import type { WatchStop } from "../rollout/roll.js";
import type { JudgeSettings, ServerJudgement } from "../watch/judge.js";
import { watchWindow } from "../watch/window.js";
import { type Fleet, hostRunner } from "./fleet.js";
import { healthEndpoint, readServingPort } from "./health-check.js";

export interface WatchVerdict {
  /**
   * breach: the judge failed some server (or an inconclusive window ended in "rollback"); halt:
   * inconclusive, and rolling.watch.inconclusive is "halt"; interrupted: Ctrl-C during the window;
   * blind: the balancer's traffic could not be read for the whole window (nothing judged).
   */
  outcome: "pass" | "breach" | "halt" | "interrupted" | "blind";
  /** blind: why. */
  blind?: string;
  /** The numbers of each server of the batch, for its summary row. */
  watched: Map<string, WatchedRate>;
  /** The servers that failed (or were inconclusive, when that stops the deploy), each with a note for its summary row. */
  breached: Map<string, string>;
}

/** The balancer host's commands, through its Host so a reconnected session is used. */
/**
 * rolling.watch: after each batch is back in rotation, its error rate at the balancer is watched
 * for a while and judged (judge.ts) before the next batch is drained. `prepare` is the preflight.
 */
export class BatchWatch {
  private constructor(
    private readonly config: Config,
    private readonly fleet: Fleet,
    private readonly emit: Emit,
    private readonly traffic: TrafficWatch,
  ) {}

  /**
   * Off (undefined) unless rolling.watch is set. Its balancer's driver checks, before any server
   * is drained, that the traffic can be read (Nginx: the access log is there, readable and in the
   * nexus format; a ConfigError, exit 2, names the fix).
   */
  static async prepare(config: Config, fleet: Fleet, emit: Emit): Promise<BatchWatch | undefined> {
    if (config.rolling.watch.duration <= 0) return undefined;
    const entry = watchedBalancer(config);
    if (!entry) throw new ConfigError(config.file, ["rolling.watch: no balancer to read the traffic from"]);
    if (config.balancers.length > 1) {
      emit({
        type: "warn",
        message: `rolling.watch reads the traffic of one balancer, ${entry.host}: behind an active/passive pair, list the active one first; behind an active/active pair it sees only its share`,
      });
    }
    const traffic = await driverFor(entry).watch(entry, {
      config,
      emit,
      host: hostRunner(fleet.hosts, entry.host),
      closeWith: (closable) => fleet.closeWith(closable),
    });
    return new BatchWatch(config, fleet, emit, traffic);
  }

  /** Servers watched so far: on the new release, so no longer a control group. */
  private readonly touched = new Set<string>();
  /** Each watched server's numbers, for its summary row. */
  readonly watched = new Map<string, WatchedRate>();

  /**
   * For the engine's seam: why the batch goes back (a fail, an interruption during the window,
   * an inconclusive window under "rollback") or why the deploy stops with it in place (inconclusive
   * under "halt"; a blind window, for a human), or undefined to go on; the numbers are left in `watched`.
   */
  async reason(batch: readonly ServerConfig[], signal: AbortSignal): Promise<WatchStop | undefined> {
    const verdict = await this.window(batch, signal);
    if (verdict.outcome === "pass") return undefined;
    if (verdict.outcome === "blind")
      return { reason: verdict.blind ?? "watch: blind", action: "needs-human" };
    const reason = [...new Set(verdict.breached.values())].join("; ") || "interrupted during its watch";
    return { reason, action: verdict.outcome === "halt" ? "halt" : "rollback" };
  }

  /** Watches `batch`, just put back in rotation, against the servers no batch has reached yet. */
  async window(batch: readonly ServerConfig[], signal: AbortSignal): Promise<WatchVerdict> {
    const { config, emit } = this;
    const settings = config.rolling.watch;
    const first = this.touched.size === 0;
    const durationMs = first ? (settings.canary ?? settings.duration) : settings.duration;
    for (const s of batch) this.touched.add(s.name);
    const touched = this.touched;
    let result: Awaited<ReturnType<typeof watchWindow>>;
    try {
      const inRotation = new Set(
        (await this.fleet.balancer.state(config.servers)).filter((b) => b.inRotation).map((b) => b.server),
      );
      const untouched = config.servers.filter((s) => !touched.has(s.name) && inRotation.has(s.name));
      // A server an operator had drained is deployed and left drained: it serves nothing to judge.
      const serving = batch.filter((s) => inRotation.has(s.name));
      if (serving.length === 0) return { outcome: "pass", watched: new Map(), breached: new Map() };
      batch = serving;
      const warmup = settings.warmup > 0 ? ` after a ${settings.warmup / 1000}s warm-up` : "";
      emit({
        type: "info",
        message: `watching ${batch.map((s) => s.name).join(", ")} for ${durationMs / 1000}s${warmup} at the balancer (against ${untouched.length} untouched server(s))`,
      });
      result = await this.measure(batch, untouched, durationMs, signal);
    } catch (error) {
      // The balancer's state could not be read: nothing was judged, so nothing is blamed.
      return this.blind(
        batch,
        `watch: could not read the balancer (${(error as Error).message.split("\n")[0]})`,
      );
    }
    if (result.blind !== undefined)
      return this.blind(
        batch,
        `watch: could not read the balancer's traffic for ${result.seconds.toFixed(0)}s (${result.blind})`,
      );

    const { judgement } = result;
    const watched = new Map<string, WatchedRate>();
    const breached = new Map<string, string>();
    let halt = false;
    for (const s of judgement.servers) {
      const numbers: WatchedRate = { requests: s.requests, failures: s.failures, rate: s.rate };
      if (s.latency) numbers.p99 = s.latency.p99;
      watched.set(s.server, numbers);
      this.watched.set(s.server, numbers);
      const outcome = result.interrupted ? "interrupted" : this.resultOf(s);
      if (outcome === "breach") breached.set(s.server, `watch: ${s.reason}`);
      if (outcome === "inconclusive") {
        breached.set(s.server, `watch inconclusive after ${result.seconds.toFixed(0)}s: ${s.reason}`);
        halt ||= settings.inconclusive === "halt";
      }
      this.report(s, outcome, result);
    }
    const outcome: WatchVerdict["outcome"] = result.interrupted
      ? "interrupted"
      : breached.size === 0
        ? "pass"
        : halt && judgement.verdict !== "fail"
          ? "halt"
          : "breach";
    return { outcome, watched, breached };
  }

  /**
   * Blind is not bad: a window that could not read the balancer's traffic says nothing about the
   * release, so the batch is not rolled back as if it were. (With rolling.watch.onBlind "wait",
   * the window itself waits until it can read; only a balancer whose state cannot be read ends here.)
   */
  private blind(batch: readonly ServerConfig[], note: string): WatchVerdict {
    for (const s of batch) this.emit({ type: "warn", server: s.name, message: note });
    return { outcome: "blind", blind: note, watched: new Map(), breached: new Map() };
  }

  /** The `watch` event of one server's judgement (and a warning when it passed unjudged). */
  private report(
    s: ServerJudgement,
    outcome: ReturnType<BatchWatch["resultOf"]> | "interrupted",
    result: Awaited<ReturnType<typeof watchWindow>>,
  ): void {
    const { judgement } = result;
    this.emit({
      type: "watch",
      server: s.server,
      result: outcome,
      verdict: s.verdict,
      ...(s.metric ? { metric: s.metric } : {}),
      ...(s.p !== undefined ? { p: s.p } : {}),
      reference: s.reference,
      requests: s.requests,
      failures: s.failures,
      rate: s.rate,
      limit: s.limit,
      threshold: s.threshold,
      untouchedRate: judgement.untouchedRate,
      baselineRate: judgement.baselineRate,
      ...(s.latency ? { latency: s.latency } : {}),
      ...(s.referenceLatency ? { referenceLatency: s.referenceLatency } : {}),
      ...(s.baselineLatency ? { baselineLatency: s.baselineLatency } : {}),
      seconds: result.seconds,
      message: s.reason,
    });
    if (outcome === "unjudged") {
      this.emit({
        type: "warn",
        server: s.server,
        message: `passed its watch unjudged (inconclusive after ${result.seconds.toFixed(1)}s; rolling.watch.inconclusive is "pass"): ${s.reason}`,
      });
    }
  }

  /** The `watch` event's result: an inconclusive judgement as rolling.watch.inconclusive has it end. */
  private resultOf(s: ServerJudgement): "pass" | "breach" | "unjudged" | "inconclusive" {
    if (s.verdict === "pass") return "pass";
    if (s.verdict === "fail") return "breach";
    return this.config.rolling.watch.inconclusive === "pass" ? "unjudged" : "inconclusive";
  }

  private measure(
    batch: readonly ServerConfig[],
    untouched: readonly ServerConfig[],
    durationMs: number,
    signal: AbortSignal,
  ) {
    const { config, emit } = this;
    const settings = config.rolling.watch;
    const seconds = durationMs / 1000;
    // A kept connection per server for the window's probes; nothing restarts them meanwhile.
    const agents = new Map<string, Promise<ProbeAgent>>();
    return watchWindow({
      source: this.traffic.source,
      serverOf: this.traffic.serverOf,
      watched: batch.map((s) => s.name),
      untouched: untouched.map((s) => s.name),
      baseline: this.traffic.baseline,
      durationMs,
      warmupMs: settings.warmup,
      maxDurationMs: settings.maxDuration ?? 2 * durationMs,
      settings: judgeSettings(settings),
      probe: (name) => this.probe(name, agents),
      signal,
      onBlind: settings.onBlind,
      onBlindWait: (blindFor, why) =>
        emit({
          type: "warn",
          message: `watch: could not read the balancer's traffic for ${blindFor.toFixed(0)}s (${why}): waiting until it can (rolling.watch.onBlind "wait"; Ctrl-C stops)`,
        }),
      onExtend: (judgement) => {
        for (const s of judgement.servers.filter((j) => j.verdict === "inconclusive")) {
          emit({
            type: "warn",
            server: s.server,
            message: `inconclusive after ${seconds}s (${s.reason}): watching ${seconds}s more`,
          });
        }
      },
    }).finally(() => {
      for (const made of agents.values())
        void made.then(
          (agent) => agent.destroy(),
          () => {},
        );
    });
  }

  private async probe(name: string, agents: Map<string, Promise<ProbeAgent>>): Promise<boolean> {
    try {
      let made = agents.get(name);
      if (!made) {
        // The port that serves now: under the surge strategy, maybe app.surgePort.
        const host = this.fleet.host(name);
        made = readServingPort(host, this.config).then(
          (port) => new ProbeAgent(healthEndpoint(host, this.config, "watch probe", port)),
        );
        agents.set(name, made);
        // Not read (a lost connection): asked again at the next probe.
        made.catch(() => agents.delete(name));
      }
      const agent = await made;
      const result = await probeOnce(
        { agent, path: this.config.health.path, timeoutMs: this.config.health.timeout },
        Date.now(),
      );
      return result.ok;
    } catch {
      return false;
    }
  }
}

/** The judge's settings, out of rolling.watch. */
export function judgeSettings(watch: Config["rolling"]["watch"]): JudgeSettings {
  return {
    minRequests: watch.minRequests,
    significance: watch.significance,
    maxFailureRatio: watch.maxFailureRatio,
    maxRatioToUntouched: watch.maxRatioToUntouched,
    latency: watch.latency,
    maxLatencyRatio: watch.maxLatencyRatio,
    maxLatencyIncrease: watch.maxLatencyIncrease,
  };
}

/**
 * The balancer whose traffic the watch reads: the first entry of the first driver (in the drivers'
 * list) that is configured. Behind a pair of one kind, the first listed.
 */
function watchedBalancer(config: Config): BalancerConfig | undefined {
  for (const driver of BALANCER_DRIVERS) {
    const entry = config.balancers.find((b) => b.type === driver.type);
    if (entry) return entry;
  }
  return undefined;
}
