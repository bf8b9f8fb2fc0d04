import type { ServerConfig } from "../../config/load.js";
import { script } from "../../remote/op.js";
import { procNetTcpAddress } from "../../remote/proc-net-tcp.js";
import type { InteractiveRunner } from "../../ssh/session.js";
import { sleep } from "../../util/sleep.js";
import type { AddressMove, BackendState, Balancer, DrainWait, RotationChange } from "../balancer.js";
import { BalancerError } from "../balancer-error.js";
import { describeDrainWait, parseWaitDrained, WAIT_DRAINED_SCRIPT } from "../nginx/scripts.js";
import {
  addressChangeRefused,
  setServerAddress,
  setServerState,
  writeStateFileScript,
} from "./runtime-api.js";
import { RuntimeChannel } from "./runtime-channel.js";
import { parseServersState, parseShowStat, type ServerStat, type ServerState } from "./stats.js";

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
  /** --verbose: the state changes sent to the admin socket. */
  onCommand?: (server: string, command: string) => void;
}

/**
 * HAProxy through its runtime API: no reload and no config edit, so no client connection is ever
 * closed by a rotation change. drain = `state drain` (no new sessions), wait until the server's
 * sessions reach 0, then `state maint`; enable = `state ready`.
 */
export class HaproxyBalancer implements Balancer {
  readonly sharesChanges = false;
  private readonly channel: RuntimeChannel;
  /** The state file's writes, one after the other (each never fails: it warns). */
  private stateWrites: Promise<void> = Promise.resolve();
  /**
   * The backend's numeric id, from `show servers state` (which looks up backends only): `show
   * stat NAME` takes the first proxy of that name, and a frontend may share the backend's name.
   */
  private backendId: number | undefined;
  /** Drain waits running now: a reloaded process's connections are let go when the last ends. */
  private waits = 0;
  /** Per HAProxy server name, how many times nexus put it back in rotation: a drain wait stops then. */
  private readonly enables = new Map<string, number>();

  constructor(
    private readonly runner: InteractiveRunner,
    private readonly options: HaproxyOptions,
  ) {
    this.channel = new RuntimeChannel(runner, options.socket);
  }

  get host(): string {
    return this.runner.name;
  }

  /** The state file's writes so far are done (their warnings said). */
  async settle(): Promise<void> {
    await this.stateWrites;
  }

  /** Waits for the state file's last write, then ends the admin socket connection. */
  async close(): Promise<void> {
    await this.settle();
    this.channel.close();
  }

  private label(server: ServerConfig): string {
    return `${this.options.backend}/${this.options.serverName(server)}`;
  }

  /**
   * State changes in order, sent together with the read of the whole runtime state for the state
   * file; HAProxy answers nothing to a `set server` that worked.
   */
  private async setStates(
    changes: readonly { server: ServerConfig; state: ServerAdminState }[],
    moves: readonly AddressMove[] = [],
  ): Promise<void> {
    if (changes.length + moves.length === 0) return;
    const sets = [
      ...moves.map(({ server, to }) =>
        setServerAddress(this.options.backend, this.options.serverName(server), to),
      ),
      ...changes.map(({ server, state }) =>
        setServerState(this.options.backend, this.options.serverName(server), state),
      ),
    ];
    this.options.onCommand?.(this.host, `HAProxy admin socket: ${sets.join("; ")}`);
    const replies = await this.channel.callAll(
      this.options.stateFile ? [...sets, "show servers state"] : sets,
    );
    const refused = [
      ...moves.flatMap(({ server, to }, i) => {
        const refusal = addressChangeRefused(replies[i] ?? "");
        return refusal ? [`the move of ${this.label(server)} to ${to}: ${refusal}`] : [];
      }),
      ...changes.flatMap(({ server, state }, i) => {
        const reply = replies[moves.length + i];
        return reply ? [`"state ${state}" for ${this.label(server)}: ${reply}`] : [];
      }),
    ];
    if (refused.length < sets.length) this.saveState(replies[sets.length]);
    if (refused.length > 0) throw new BalancerError(`${this.host}: HAProxy refused ${refused.join("; ")}`);
  }

  private setState(servers: readonly ServerConfig[], state: ServerAdminState): Promise<void> {
    return this.setStates(servers.map((server) => ({ server, state })));
  }

  /**
   * Writes the whole runtime state (read with the change) to the `server-state-file`, so that a
   * restart of HAProxy keeps the change. Off the change's path (a remote command: ~10 ms each time
   * a server leaves or rejoins): the writes follow one another, and `settle` (before the command's
   * result) and `close` wait for the last. Failing is a warning: the change stands.
   */
  private saveState(state: string | undefined): void {
    const file = this.options.stateFile;
    if (!file || state === undefined) return;
    const write = async () => {
      const problem = await this.runner
        .exec(writeStateFileScript(file), { stdin: `${state}\n` })
        .then((result) => (result.code === 0 ? undefined : result.stderr.trim() || `exit ${result.code}`))
        .catch((error: Error) => error.message);
      if (problem !== undefined) {
        this.options.onWarning?.(
          `cannot write the HAProxy state file ${file} (balancer.stateFile): a restart of HAProxy would forget this change: ${problem}`,
        );
      }
    };
    this.stateWrites = this.stateWrites.then(write);
  }

  private async serversState(): Promise<ServerState[]> {
    return this.parseState(await this.channel.call(`show servers state ${this.options.backend}`));
  }

  /** "Can't find backend." is HAProxy's whole answer for a backend it does not have. */
  private parseState(text: string): ServerState[] {
    if (/^Can't find backend/i.test(text)) {
      throw new BalancerError(
        `${this.host}: HAProxy has no backend "${this.options.backend}" (balancer.backend)`,
      );
    }
    const states = this.parse(() => parseServersState(text));
    this.backendId = states.find((s) => s.backend === this.options.backend)?.backendId ?? this.backendId;
    return states;
  }

  /** `show stat` of the backend's servers, by the backend's id once known. */
  private async statCommand(): Promise<string> {
    if (this.backendId === undefined) await this.serversState();
    return `show stat ${this.backendId ?? this.options.backend} 4 -1`;
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
    return this.channel.call(await this.statCommand());
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
        ...(entry?.port
          ? { address: `${entry.address.includes(":") ? `[${entry.address}]` : entry.address}:${entry.port}` }
          : {}),
      };
    });
  }

  /**
   * One round trip; moves first (`set server … addr … port …`: new sessions go to the new address,
   * those open on the old one finish there), then enables, so capacity comes back before any more
   * leaves.
   */
  async apply(change: RotationChange): Promise<void> {
    for (const server of change.enable ?? []) {
      const name = this.options.serverName(server);
      this.enables.set(name, (this.enables.get(name) ?? 0) + 1);
    }
    await this.setStates(
      [
        ...(change.enable ?? []).map((server) => ({ server, state: "ready" as const })),
        ...(change.drain ?? []).map((server) => ({ server, state: "drain" as const })),
      ],
      change.move,
    );
  }

  /**
   * No connection from the HAProxy host to `address` (a server's old address after a move) is
   * left: counted in the host's /proc/net/tcp, as the Nginx driver counts a drain's (its script).
   * The server's sessions (`scur`) cannot tell: they count both addresses.
   */
  async waitLeft(_server: ServerConfig, address: string, timeoutMs: number): Promise<DrainWait> {
    const tcp = procNetTcpAddress(address);
    if (tcp === undefined) return { drained: true, open: 0, detail: "connections not countable (not IPv4)" };
    const result = await this.runner.exec(script(WAIT_DRAINED_SCRIPT, timeoutMs, tcp));
    if (result.code !== 0)
      throw new BalancerError(
        `${this.host}: counting connections to ${address} failed: ${result.stderr.trim()}`,
      );
    const counts = this.parse(() => parseWaitDrained(result.stdout));
    const open = counts.open.get(tcp) ?? 0;
    return { drained: open === 0, open, detail: describeDrainWait(counts, open) };
  }

  /**
   * Polls the server's sessions until none is left, then puts it in maintenance (no health checks,
   * no persistent session sent there) and reads them once more: a session a `drain` still let in
   * (a persistent one) just before `maint` is waited for too. If HAProxy restarted meanwhile (the
   * runtime state is lost and the server is back in rotation), the drain is applied again.
   */
  async waitDrained(server: ServerConfig, timeoutMs: number): Promise<DrainWait> {
    this.waits++;
    try {
      return await this.waitUntilDrained(server, timeoutMs);
    } finally {
      // Another wait of the batch may still count the sessions a reloaded process finishes.
      if (--this.waits === 0) this.channel.releaseStopping();
    }
  }

  private async waitUntilDrained(server: ServerConfig, timeoutMs: number): Promise<DrainWait> {
    const interval = this.options.pollInterval ?? 10;
    const deadline = Date.now() + timeoutMs;
    const name = this.options.serverName(server);
    const enables = this.enables.get(name) ?? 0;
    let maint = false;
    for (;;) {
      const { stat, admin, before } = await this.poll(server);
      const open = stat.sessions + stat.queued + before;
      // Put back by nexus meanwhile (the batch's drain failed elsewhere): not this wait's to undo.
      if ((this.enables.get(name) ?? 0) !== enables)
        return { drained: false, open, detail: "put back in rotation while its drain was waited for" };
      if (!admin.drain && !admin.maint) {
        if (Date.now() >= deadline) return { drained: false, open };
        this.options.onWarning?.(
          `${this.label(server)} was back in rotation while draining (HAProxy restarted?): draining it again`,
        );
        maint = false;
        await this.setState([server], "drain");
        continue;
      }
      if (open === 0 && maint) return { drained: true, open: 0 };
      const late = Date.now() >= deadline;
      if (open === 0 || late) {
        if (!maint) await this.setState([server], "maint");
        maint = true;
        if (late) return { drained: open === 0, open };
        continue;
      }
      await sleep(interval);
    }
  }

  /**
   * The server's sessions (`show stat`) and administrative state (`show servers state`), together;
   * `before`: its sessions in a process a reload replaced, which still finishes what it had.
   */
  private async poll(
    server: ServerConfig,
  ): Promise<{ stat: ServerStat; admin: ServerState; before: number }> {
    const name = this.options.serverName(server);
    const mine = (s: ServerStat) => s.backend === this.options.backend && s.server === name;
    for (let attempt = 1; ; attempt++) {
      const showStat = await this.statCommand();
      const [statText = "", stateText = ""] = await this.channel.callAll([
        showStat,
        `show servers state ${this.options.backend}`,
      ]);
      const admin = this.parseState(stateText).find((s) => s.server === name);
      const row = this.parse(() => parseShowStat(statText)).find(mine);
      // A reload with a new config may have given the backend another id: asked again by the new one.
      if (!row && admin && showStat !== (await this.statCommand()) && attempt < 3) continue;
      if (!row || !admin)
        throw new BalancerError(`${this.host}: HAProxy has no server ${this.label(server)}`);
      // A reloaded process's ids may differ from the new one's: every server row, by name.
      let before = 0;
      for (const [text = ""] of await this.channel.callStopping(["show stat -1 4 -1"])) {
        const old = this.parse(() => parseShowStat(text)).find(mine);
        before += old ? old.sessions + old.queued : 0;
      }
      return { stat: row, admin, before };
    }
  }
}
