import type { TrafficWatch } from "../balancer/driver.js";
import { BALANCER_DRIVERS, type BalancerConfig, driverFor } from "../balancer/drivers.js";
import { ConfigError } from "../config/errors.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit, WatchedRate } from "../events/events.js";
import { probeOnce } from "../health/probe.js";
import type { ServerJudgement } from "../watch/judge.js";
import { watchWindow } from "../watch/window.js";
import { type Fleet, hostRunner } from "./fleet.js";
import { healthOrigin } from "./health-check.js";

export interface WatchVerdict {
  /** breach: some server crossed a threshold; interrupted: Ctrl-C during the window. */
  outcome: "pass" | "breach" | "interrupted";
  /** The numbers of each server of the batch, for its summary row. */
  watched: Map<string, WatchedRate>;
  /** The servers that crossed a threshold, each with a note for its summary row. */
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
   * For an engine seam `(batch, signal) => Promise<string | undefined>`: the reason to roll the
   * batch back (a breach, or an interruption during the window), or undefined; the numbers are
   * left in `watched`.
   */
  async reason(batch: readonly ServerConfig[], signal: AbortSignal): Promise<string | undefined> {
    const verdict = await this.window(batch, signal);
    if (verdict.outcome === "pass") return undefined;
    return [...new Set(verdict.breached.values())].join("; ") || "interrupted during its watch";
  }

  /** Watches `batch`, just put back in rotation, against the servers no batch has reached yet. */
  async window(batch: readonly ServerConfig[], signal: AbortSignal): Promise<WatchVerdict> {
    const { config, emit } = this;
    const settings = config.rolling.watch;
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
      emit({
        type: "info",
        message: `watching ${batch.map((s) => s.name).join(", ")} for ${settings.duration / 1000}s at the balancer (against ${untouched.length} untouched server(s))`,
      });
      result = await this.measure(batch, untouched, signal);
    } catch (error) {
      // Blind is not healthy: a window that cannot read the balancer fails like a gate that cannot probe.
      const note = `watch: could not read the balancer's traffic: ${(error as Error).message.split("\n")[0]}`;
      for (const s of batch) emit({ type: "error", server: s.name, message: note });
      return { outcome: "breach", watched: new Map(), breached: new Map(batch.map((s) => [s.name, note])) };
    }

    const { judgement } = result;
    const watched = new Map<string, WatchedRate>();
    const breached = new Map<string, string>();
    for (const s of judgement.servers) {
      watched.set(s.server, { requests: s.requests, failures: s.failures, rate: s.rate });
      this.watched.set(s.server, { requests: s.requests, failures: s.failures, rate: s.rate });
      const outcome = result.interrupted ? "interrupted" : resultOf(s);
      if (outcome === "breach") breached.set(s.server, `watch: ${s.reason}`);
      emit({
        type: "watch",
        server: s.server,
        result: outcome,
        requests: s.requests,
        failures: s.failures,
        rate: s.rate,
        limit: s.limit,
        threshold: s.threshold,
        untouchedRate: judgement.untouchedRate,
        baselineRate: judgement.baselineRate,
        seconds: result.seconds,
        message: s.reason,
      });
      if (outcome === "unjudged") {
        emit({
          type: "warn",
          server: s.server,
          message: `passed its watch unjudged: only ${s.requests} request(s) in ${result.seconds.toFixed(1)}s, fewer than minRequests ${settings.minRequests} (${s.failures} failed)`,
        });
      }
    }
    return {
      outcome: result.interrupted ? "interrupted" : judgement.outcome === "breach" ? "breach" : "pass",
      watched,
      breached,
    };
  }

  private measure(batch: readonly ServerConfig[], untouched: readonly ServerConfig[], signal: AbortSignal) {
    const { config, emit } = this;
    const settings = config.rolling.watch;
    const seconds = settings.duration / 1000;
    return watchWindow({
      source: this.traffic.source,
      serverOf: this.traffic.serverOf,
      watched: batch.map((s) => s.name),
      untouched: untouched.map((s) => s.name),
      baseline: this.traffic.baseline,
      durationMs: settings.duration,
      thresholds: settings,
      probe: (name) => this.probe(name),
      signal,
      onExtend: (judgement) => {
        for (const s of judgement.servers.filter((j) => j.result === "too-few")) {
          emit({
            type: "warn",
            server: s.server,
            message: `only ${s.requests} request(s) in ${seconds}s (minRequests ${settings.minRequests}): watching ${seconds}s more`,
          });
        }
      },
    });
  }

  private async probe(name: string): Promise<boolean> {
    try {
      const origin = await healthOrigin(this.fleet.host(name), this.config);
      const result = await probeOnce(
        { origin, path: this.config.health.path, timeoutMs: this.config.health.timeout },
        Date.now(),
      );
      return result.ok;
    } catch {
      return false;
    }
  }
}

function resultOf(s: ServerJudgement): "pass" | "breach" | "unjudged" {
  return s.result === "too-few" ? "unjudged" : s.result;
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
