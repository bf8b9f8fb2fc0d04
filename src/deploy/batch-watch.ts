import { isIP } from "node:net";
import { createBalancer } from "../balancer/factory.js";
import type { HaproxyBalancer } from "../balancer/haproxy/haproxy.js";
import { ConfigError } from "../config/errors.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { Emit, WatchedRate } from "../events/events.js";
import { probeOnce } from "../health/probe.js";
import { resolveRemotePath } from "../remote/layout.js";
import { HaproxyStatSource } from "../watch/haproxy-source.js";
import type { ServerJudgement } from "../watch/judge.js";
import { NginxLogSource } from "../watch/nginx-source.js";
import { AccessLogProblem, checkAccessLog } from "../watch/preflight.js";
import type { Counts, TrafficSource } from "../watch/traffic.js";
import { watchWindow } from "../watch/window.js";
import { type Fleet, hostRunner } from "./fleet.js";
import { healthOrigin } from "./health-check.js";

export interface WatchVerdict {
  /**
   * breach: some server crossed a threshold; interrupted: Ctrl-C during the window; blind: the
   * balancer's traffic could not be read for the whole window (nothing judged).
   */
  outcome: "pass" | "breach" | "interrupted" | "blind";
  /** blind: why. */
  blind?: string;
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
    private readonly source: TrafficSource,
    /** The nexus server a traffic key (an address for Nginx, a server name for HAProxy) belongs to. */
    private readonly serverOf: (key: string) => string | undefined,
    private readonly baseline: Counts | undefined,
  ) {}

  /**
   * Off (undefined) unless rolling.watch is set. Checks, before any server is drained, that the
   * access log is there, readable and in the nexus format: a ConfigError (exit 2) names the fix.
   */
  static async prepare(config: Config, fleet: Fleet, emit: Emit): Promise<BatchWatch | undefined> {
    if (config.rolling.watch.duration <= 0) return undefined;
    if (config.balancers.length > 1) {
      const read = config.balancers.find((b) => b.type === "nginx") ?? config.balancers[0];
      emit({
        type: "warn",
        message: `rolling.watch reads the traffic of one balancer, ${read?.host}: behind an active/passive pair, list the active one first; behind an active/active pair it sees only its share`,
      });
    }
    const nginx = config.balancers.find((b) => b.type === "nginx");
    if (!nginx) return BatchWatch.fromHaproxy(config, fleet, emit);
    const { runner, home } = hostRunner(fleet.hosts, nginx.host);
    const path = resolveRemotePath(nginx.accessLog, home);
    let check: Awaited<ReturnType<typeof checkAccessLog>>;
    try {
      check = await checkAccessLog(runner, {
        path,
        testCommand: nginx.testCommand,
        addresses: config.servers.map((s) => asLogged(s.upstream)),
      });
    } catch (error) {
      if (error instanceof AccessLogProblem)
        throw new ConfigError(config.file, [
          `balancer.accessLog (needed by rolling.watch): ${error.message}`,
        ]);
      throw error;
    }
    if (check.warning) emit({ type: "warn", server: runner.name, message: check.warning });
    for (const server of config.servers) {
      const address = server.upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      if (isIP(address) === 0) {
        emit({
          type: "warn",
          server: server.name,
          message: `upstream ${server.upstream} is a host name: Nginx logs the address it resolved to, so the watch cannot see this server's traffic; write its address in servers[].upstream`,
        });
      }
    }
    if (check.baseline) {
      emit({
        type: "info",
        message: `watch: before the deploy, ${check.baseline.failures} of ${check.baseline.requests} recent request(s) failed at the balancer`,
      });
    }
    const byAddress = new Map(config.servers.map((s) => [asLogged(s.upstream), s.name]));
    const source = new NginxLogSource(runner, path);
    return new BatchWatch(config, fleet, emit, source, (key) => byAddress.get(key), check.baseline);
  }

  /** HAProxy's per-server counters (show stat), through its admin socket: no log format needed. */
  private static fromHaproxy(config: Config, fleet: Fleet, emit: Emit): BatchWatch {
    const entry = config.balancers.find((b) => b.type === "haproxy");
    if (!entry) throw new ConfigError(config.file, ["rolling.watch: no balancer to read the traffic from"]);
    const { runner, home } = hostRunner(fleet.hosts, entry.host);
    const haproxy = createBalancer(entry, runner, { home }) as HaproxyBalancer;
    fleet.closeWith(haproxy);
    const byName = new Map(config.servers.map((s) => [entry.servers[s.name] ?? s.name, s.name]));
    const source = new HaproxyStatSource(() => haproxy.showStat(), entry.backend);
    return new BatchWatch(config, fleet, emit, source, (key) => byName.get(key), undefined);
  }

  /** Servers watched so far: on the new release, so no longer a control group. */
  private readonly touched = new Set<string>();
  /** Each watched server's numbers, for its summary row. */
  readonly watched = new Map<string, WatchedRate>();

  /**
   * For the engine's seam (`RollOptions.watch`): the reason to roll the batch back (a breach, or
   * an interruption during the window), `{ blind }` when the window could not read the balancer's
   * traffic, or undefined; the numbers are left in `watched`.
   */
  async reason(
    batch: readonly ServerConfig[],
    signal: AbortSignal,
  ): Promise<string | { blind: string } | undefined> {
    const verdict = await this.window(batch, signal);
    if (verdict.outcome === "pass") return undefined;
    if (verdict.outcome === "blind") return { blind: verdict.blind ?? "watch: blind" };
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

  /**
   * Blind is not bad: a window that could not read the balancer's traffic says nothing about the
   * release, so the batch is not rolled back as if it were. (With rolling.watch.onBlind "wait",
   * the window itself waits until it can read; only a balancer whose state cannot be read ends here.)
   */
  private blind(batch: readonly ServerConfig[], note: string): WatchVerdict {
    for (const s of batch) this.emit({ type: "warn", server: s.name, message: note });
    return { outcome: "blind", blind: note, watched: new Map(), breached: new Map() };
  }

  private measure(batch: readonly ServerConfig[], untouched: readonly ServerConfig[], signal: AbortSignal) {
    const { config, emit } = this;
    const settings = config.rolling.watch;
    const seconds = settings.duration / 1000;
    return watchWindow({
      source: this.source,
      serverOf: this.serverOf,
      watched: batch.map((s) => s.name),
      untouched: untouched.map((s) => s.name),
      baseline: this.baseline,
      durationMs: settings.duration,
      thresholds: settings,
      probe: (name) => this.probe(name),
      signal,
      onBlind: settings.onBlind,
      onBlindWait: (blindFor, why) =>
        emit({
          type: "warn",
          message: `watch: could not read the balancer's traffic for ${blindFor.toFixed(0)}s (${why}): waiting until it can (rolling.watch.onBlind "wait"; Ctrl-C stops)`,
        }),
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

/** An upstream as Nginx logs the address it sent a request to: with its port (80 when it has none). */
function asLogged(upstream: string): string {
  return /:\d+$|^\[/.test(upstream) ? upstream : `${upstream}:80`;
}
