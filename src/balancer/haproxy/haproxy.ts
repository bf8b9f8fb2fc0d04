import type { ServerConfig } from "../../config/load.js";
import type { CommandRunner } from "../../ssh/session.js";
import { sleep } from "../../util/sleep.js";
import type { BackendState, Balancer, DrainWait, RotationChange } from "../balancer.js";
import { BalancerError } from "../balancer-error.js";
import {
  drainPollScript,
  NO_SOCKET,
  type Reply,
  runtimeScript,
  STATE_FILE_FAILED,
  saveStateLines,
  setServerState,
  splitReplies,
} from "./runtime-api.js";
import { parseServersState, parseShowStat, type ServerState } from "./stats.js";

type ServerAdminState = "ready" | "drain" | "maint";

export interface HaproxyOptions {
  /** The admin socket on the balancer host (`stats socket PATH level admin`). */
  socket: string;
  backend: string;
  /** The HAProxy server name of a nexus server. */
  serverName: (server: ServerConfig) => string;
  /** The `server-state-file` to keep up to date after each change, if any. */
  stateFile?: string;
  pollInterval?: number;
  onWarning?: (message: string) => void;
}

/**
 * HAProxy through its runtime API: no reload and no config edit, so no client connection is ever
 * closed by a rotation change. drain = `state drain` (no new sessions), wait until the server's
 * sessions reach 0, then `state maint`; enable = `state ready`.
 */
export class HaproxyBalancer implements Balancer {
  readonly sharesChanges = false;
  constructor(
    private readonly runner: CommandRunner,
    private readonly options: HaproxyOptions,
  ) {}

  get host(): string {
    return this.runner.name;
  }

  private label(server: ServerConfig): string {
    return `${this.options.backend}/${this.options.serverName(server)}`;
  }

  /** Runs runtime API commands in one round trip. */
  private call(commands: string[], what: string, save = false): Promise<Reply[]> {
    return this.send(runtimeScript(this.options.socket, commands, this.saving(save)), commands.length, what);
  }

  private saving(save: boolean): string[] {
    return save && this.options.stateFile ? saveStateLines(this.options.stateFile) : [];
  }

  /** Runs a runtime API script that answers at least `expected` replies, all through the socket. */
  private async send(script: string, expected: number, what: string): Promise<Reply[]> {
    const result = await this.runner.exec(script);
    const stderr = result.stderr.trim();
    if (result.code === NO_SOCKET) throw new BalancerError(`${this.host}: ${stderr}`);
    if (result.stdout.includes(STATE_FILE_FAILED)) {
      this.options.onWarning?.(
        `cannot write the HAProxy state file ${this.options.stateFile} (balancer.stateFile): a restart of HAProxy would forget this change${stderr ? `: ${stderr}` : ""}`,
      );
    }
    const replies = splitReplies(result.stdout);
    const failed = replies.findIndex((reply) => reply.status !== 0);
    if (replies.length < expected || failed >= 0) {
      throw new BalancerError(
        `${this.host}: ${what}: the HAProxy admin socket ${this.options.socket} did not answer${stderr ? `: ${stderr}` : ""}`,
      );
    }
    if (result.code !== 0) {
      throw new BalancerError(`${this.host}: ${what}: ${stderr || `exit ${result.code}`}`);
    }
    return replies;
  }

  /** State changes in one round trip, in order; HAProxy answers nothing to a `set server` that worked. */
  private async setStates(
    changes: readonly { server: ServerConfig; state: ServerAdminState }[],
  ): Promise<void> {
    if (changes.length === 0) return;
    const commands = changes.map(({ server, state }) =>
      setServerState(this.options.backend, this.options.serverName(server), state),
    );
    const replies = await this.call(
      commands,
      `state ${[...new Set(changes.map((c) => c.state))].join(", ")}`,
      true,
    );
    const refused = replies
      .map((reply, i) => ({ reply, ...(changes[i] as (typeof changes)[number]) }))
      .filter(({ reply }) => reply.text !== "");
    if (refused.length > 0) {
      throw new BalancerError(
        `${this.host}: HAProxy refused ${refused.map(({ server, state, reply }) => `"state ${state}" for ${this.label(server)}: ${reply.text}`).join("; ")}`,
      );
    }
  }

  private setState(servers: readonly ServerConfig[], state: ServerAdminState): Promise<void> {
    return this.setStates(servers.map((server) => ({ server, state })));
  }

  private async serversState(): Promise<ServerState[]> {
    const [reply] = await this.call(
      [`show servers state ${this.options.backend}`],
      "reading the servers' state",
    );
    return this.parseState(reply?.text ?? "");
  }

  /** "Can't find backend." is HAProxy's whole answer for a backend it does not have. */
  private parseState(text: string): ServerState[] {
    if (/^Can't find backend/i.test(text)) {
      throw new BalancerError(
        `${this.host}: HAProxy has no backend "${this.options.backend}" (balancer.backend)`,
      );
    }
    return this.parse(() => parseServersState(text));
  }

  private parse<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      throw new BalancerError(`${this.host}: ${(error as Error).message}`);
    }
  }

  /** `show stat` of the backend (CSV): the counters the error-rate watch reads. */
  async showStat(): Promise<string> {
    const [reply] = await this.call([`show stat ${this.options.backend} 4 -1`], "reading show stat");
    return reply?.text ?? "";
  }

  /** The live runtime state, not the config file: what HAProxy does right now. */
  async state(servers: readonly ServerConfig[]): Promise<BackendState[]> {
    const live = await this.serversState();
    return servers.map((server) => {
      const entry = live.find((s) => s.server === this.options.serverName(server));
      return {
        server: server.name,
        upstream: this.label(server),
        present: !!entry,
        inRotation: !!entry && !entry.maint && !entry.drain,
      };
    });
  }

  /** One round trip; enables first, so capacity comes back before any more leaves. */
  async apply(change: RotationChange): Promise<void> {
    await this.setStates([
      ...(change.enable ?? []).map((server) => ({ server, state: "ready" as const })),
      ...(change.drain ?? []).map((server) => ({ server, state: "drain" as const })),
    ]);
  }

  /**
   * Polls the server's sessions until none is left, then puts it in maintenance (no health checks,
   * no persistent session sent there): the poll that finds none sets `maint` in the same round
   * trip (drainPollScript). If HAProxy restarted meanwhile (the runtime state is lost and the
   * server is back in rotation), the drain is applied again.
   */
  async waitDrained(server: ServerConfig, timeoutMs: number): Promise<DrainWait> {
    const name = this.options.serverName(server);
    const interval = this.options.pollInterval ?? 20;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [stat, states, maint] = await this.send(
        drainPollScript(this.options.socket, this.options.backend, name, this.saving(true)),
        2,
        "reading the server's sessions",
      );
      const admin = this.parseState(states?.text ?? "").find((s) => s.server === name);
      const row = this.parse(() => parseShowStat(stat?.text ?? "")).find((s) => s.server === name);
      if (!row || !admin)
        throw new BalancerError(`${this.host}: HAProxy has no server ${this.label(server)}`);
      const restarted = !admin.drain && !admin.maint;
      if (maint) {
        if (maint.text !== "")
          throw new BalancerError(
            `${this.host}: HAProxy refused "state maint" for ${this.label(server)}: ${maint.text}`,
          );
        if (restarted)
          this.options.onWarning?.(
            `${this.label(server)} was back in rotation while draining (HAProxy restarted?), with no session: put in maintenance`,
          );
        return { drained: true, open: 0 };
      }
      if (restarted) {
        this.options.onWarning?.(
          `${this.label(server)} was back in rotation while draining (HAProxy restarted?): draining it again`,
        );
        await this.setState([server], "drain");
      }
      const open = row.sessions + row.queued;
      if (open === 0 || Date.now() >= deadline) {
        await this.setState([server], "maint");
        return { drained: open === 0, open };
      }
      await sleep(interval);
    }
  }
}
