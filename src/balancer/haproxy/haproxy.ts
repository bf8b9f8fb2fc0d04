import type { ServerConfig } from "../../config/load.js";
import { script } from "../../remote/op.js";
import { procNetTcpAddress } from "../../remote/proc-net-tcp.js";
import type { InteractiveRunner } from "../../ssh/session.js";
import { sleep } from "../../util/sleep.js";
import type { BackendState, Balancer, DrainWait, DrainWaitOptions, RotationChange } from "../balancer.js";
import { BalancerError } from "../balancer-error.js";
import { describeDrainWait, parseWaitDrained, WAIT_DRAINED_SCRIPT } from "../nginx/scripts.js";
import {
  addressChangeRefused,
  setServerAddress,
  setServerState,
  setServerWeight,
  shutdownServerSessions,
  writeStateFileScript,
} from "./runtime-api.js";
import { RuntimeChannel } from "./runtime-channel.js";
import { lineAddress, type ServerLines, serverLines, standbyName } from "./standby.js";
import { parseServersState, parseShowStat, type ServerStat, type ServerState } from "./stats.js";

type ServerAdminState = "ready" | "drain" | "maint";

/** One `set server` of a change, and how to read HAProxy's reply to it. */
interface LineCommand {
  command: string;
  /** For an error message: "state drain" for b/s… */
  what: string;
  /** The reply as a refusal, or undefined when it worked. */
  refused: (reply: string) => string | undefined;
}

/** `set server … state|weight` answer nothing when they work. */
const silentUnlessRefused = (reply: string) => reply.trim() || undefined;

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
  /** Per nexus server, how many times nexus put it back in rotation: a drain wait stops then. */
  private readonly enables = new Map<string, number>();
  /**
   * Whether the backend has standby lines (`<name>-surge`), as the last read of its state said:
   * without them a server's line is its name, and nothing needs reading to find it.
   */
  private hasStandby: boolean | undefined;
  /** Per nexus server, the line a surge switch left draining: `waitLeft` retires it. */
  private readonly retiring = new Map<string, string>();
  /** The warning about a backend without standby lines, said once. */
  private warnedNoStandby = false;

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
   * Changes in order, sent together with the read of the whole runtime state for the state file;
   * HAProxy answers nothing to a `set server … state|weight` that worked.
   */
  private async send(commands: readonly LineCommand[]): Promise<void> {
    if (commands.length === 0) return;
    const sets = commands.map((c) => c.command);
    this.options.onCommand?.(this.host, `HAProxy admin socket: ${sets.join("; ")}`);
    const replies = await this.channel.callAll(
      this.options.stateFile ? [...sets, "show servers state"] : sets,
    );
    const refused = commands.flatMap((c, i) => {
      const refusal = c.refused(replies[i] ?? "");
      return refusal ? [`${c.what}: ${refusal}`] : [];
    });
    if (refused.length < sets.length) this.saveState(replies[sets.length]);
    if (refused.length > 0) throw new BalancerError(`${this.host}: HAProxy refused ${refused.join("; ")}`);
  }

  private stateCommand(line: string, state: ServerAdminState): LineCommand {
    return {
      command: setServerState(this.options.backend, line, state),
      what: `"state ${state}" for ${this.options.backend}/${line}`,
      refused: silentUnlessRefused,
    };
  }

  private weightCommand(line: string, weight: number): LineCommand {
    return {
      command: setServerWeight(this.options.backend, line, weight),
      what: `"weight ${weight}" for ${this.options.backend}/${line}`,
      refused: silentUnlessRefused,
    };
  }

  private addressCommand(line: string, to: string): LineCommand {
    return {
      command: setServerAddress(this.options.backend, line, to),
      what: `the move of ${this.options.backend}/${line} to ${to}`,
      refused: addressChangeRefused,
    };
  }

  /**
   * Each server's lines, by nexus server name: read from HAProxy unless the backend is known to
   * have no standby line (then a server's line is its name).
   */
  private async linesOf(servers: readonly ServerConfig[]): Promise<Map<string, ServerLines>> {
    if (servers.length === 0) return new Map();
    const states = this.hasStandby === false ? undefined : await this.serversState();
    // Without states nothing is known but the name: `liveLine` falls back to it, a move re-addresses it.
    return new Map(
      servers.map((server) => [
        server.name,
        states
          ? serverLines(states, this.options.serverName(server))
          : { live: undefined, standby: undefined },
      ]),
    );
  }

  /** The line that carries `server`'s traffic now. */
  private liveLine(lines: Map<string, ServerLines>, server: ServerConfig): string {
    return lines.get(server.name)?.live?.server ?? this.options.serverName(server);
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
    const names = new Set(states.map((s) => s.server));
    this.hasStandby = states.some((s) => names.has(standbyName(s.server)));
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

  /** The HAProxy names of `servers` whose standby line (`<name>-surge`) the backend lacks. */
  async serversWithoutStandby(servers: readonly ServerConfig[]): Promise<string[]> {
    const names = new Set((await this.serversState()).map((s) => s.server));
    return servers
      .map((server) => this.options.serverName(server))
      .filter((name) => names.has(name) && !names.has(standbyName(name)));
  }

  /** The live runtime state, not the config file: what HAProxy does right now. */
  async state(servers: readonly ServerConfig[]): Promise<BackendState[]> {
    const live = await this.serversState();
    return servers.map((server) => {
      const entry = serverLines(live, this.options.serverName(server)).live;
      const address = entry && lineAddress(entry);
      return {
        server: server.name,
        upstream: this.label(server),
        present: !!entry,
        inRotation: !!entry && !entry.maint && !entry.drain,
        ...(address ? { address } : {}),
      };
    });
  }

  /**
   * One change (after one read of the lines, when the backend has standby lines): moves first,
   * then enables, then drains, so capacity comes back before any more leaves.
   *
   * A move (the surge switch) readies the server's standby line on the new address, with the live
   * line's weight, and drains the live line (`waitLeft` then retires it): new requests go to the new
   * process, and the connections HAProxy keeps to the old one are never picked again. A server not
   * being enabled (an operator's drain) gets its standby line addressed and weighted, in
   * maintenance. Without a standby line the one line is re-addressed (`set server … addr`), with a
   * warning: HAProxy goes on sending a client session's requests on the connection it holds to
   * the old process, so one can be reset when that process stops.
   */
  async apply(change: RotationChange): Promise<void> {
    const enable = change.enable ?? [];
    const drain = change.drain ?? [];
    const moves = change.move ?? [];
    for (const server of enable) this.enables.set(server.name, (this.enables.get(server.name) ?? 0) + 1);
    const lines = await this.linesOf([...moves.map((m) => m.server), ...enable, ...drain]);
    const commands: LineCommand[] = [];
    const switched = new Set<string>();
    for (const { server, to } of moves) {
      const { live, standby } = lines.get(server.name) ?? { live: undefined, standby: undefined };
      if (!live || !standby) {
        this.warnNoStandby(server);
        commands.push(this.addressCommand(this.options.serverName(server), to));
        continue;
      }
      if (lineAddress(live) === to) continue;
      switched.add(server.name);
      if (lineAddress(standby) !== to) commands.push(this.addressCommand(standby.server, to));
      commands.push(this.weightCommand(standby.server, live.weight || 1));
      if (enable.includes(server)) {
        commands.push(this.stateCommand(standby.server, "ready"), this.stateCommand(live.server, "drain"));
        this.retiring.set(server.name, live.server);
      } else {
        commands.push(this.stateCommand(live.server, "maint"), this.weightCommand(live.server, 0));
      }
    }
    for (const server of enable)
      if (!switched.has(server.name)) commands.push(this.stateCommand(this.liveLine(lines, server), "ready"));
    for (const server of drain) commands.push(this.stateCommand(this.liveLine(lines, server), "drain"));
    await this.send(commands);
  }

  private warnNoStandby(server: ServerConfig): void {
    if (this.warnedNoStandby) return;
    this.warnedNoStandby = true;
    const name = this.options.serverName(server);
    this.options.onWarning?.(
      `HAProxy backend ${this.options.backend} has no standby line ${standbyName(name)}: the switch re-addresses ${name}, and HAProxy keeps sending a client session's requests on the connection it holds to the old process, so one can be reset when that process stops. Add \`server ${standbyName(name)} <address>:<app.surgePort> disabled weight 0\` per server (nexus haproxy-config prints them)`,
    );
  }

  /**
   * The old process of a surge switch has no request left. With a standby line, the line the switch
   * drained has no session left: it goes to maintenance, weight 0 (the next switch's standby).
   * Without one, no connection from the HAProxy host to `address` is left: counted in the host's
   * /proc/net/tcp, as the Nginx driver counts a drain's (its script); the server's sessions
   * (`scur`) cannot tell, they count both addresses.
   */
  async waitLeft(server: ServerConfig, address: string, timeoutMs: number): Promise<DrainWait> {
    const line = this.retiring.get(server.name);
    if (line !== undefined) {
      this.retiring.delete(server.name);
      const wait = await this.waitDrainedLine(server, line, timeoutMs);
      await this.send([this.weightCommand(line, 0)]);
      return wait;
    }
    const tcp = procNetTcpAddress(address);
    if (tcp === undefined) return { drained: true, open: 0, detail: "connections not countable (not IPv4)" };
    const result = await this.runner.exec(script(WAIT_DRAINED_SCRIPT, timeoutMs, tcp));
    if (result.code !== 0)
      throw new BalancerError(
        `${this.host}: counting connections to ${address} failed: ${result.stderr.trim()}`,
      );
    const counts = this.parse(() => parseWaitDrained(result.stdout));
    const open = counts.open.get(tcp) ?? 0;
    return { drained: open === 0, open, connections: open, detail: describeDrainWait(counts, open) };
  }

  /**
   * Polls the server's sessions until none is left, then puts it in maintenance (no health checks,
   * no persistent session sent there) and reads them once more: a session a `drain` still let in
   * (a persistent one) just before `maint` is waited for too. If HAProxy restarted meanwhile (the
   * runtime state is lost and the server is back in rotation), the drain is applied again.
   */
  async waitDrained(server: ServerConfig, timeoutMs: number, options?: DrainWaitOptions): Promise<DrainWait> {
    const line = this.liveLine(await this.linesOf([server]), server);
    return this.waitDrainedLine(server, line, timeoutMs, options);
  }

  private async waitDrainedLine(
    server: ServerConfig,
    line: string,
    timeoutMs: number,
    options: DrainWaitOptions = {},
  ): Promise<DrainWait> {
    this.waits++;
    try {
      const { sessions = 0, ...wait } = await this.waitUntilDrained(server, line, timeoutMs);
      return options.shutAtTimeout && sessions > 0 ? await this.shut(line, wait, sessions) : wait;
    } finally {
      // Another wait of the batch may still count the sessions a reloaded process finishes.
      if (--this.waits === 0) this.channel.releaseStopping();
    }
  }

  /**
   * The sessions still open at the drain timeout (long-lived: WebSockets, SSE) shut by HAProxy
   * itself (`shutdown sessions server`), not by the restart killing the process: the server is in
   * maintenance by then, so the clients' reconnections go to the servers in rotation. Those of a
   * process a reload replaced are out of this process's reach: the restart cuts them. A refusal
   * is a warning: the drain is done all the same, and the restart cuts them instead.
   */
  private async shut(line: string, wait: DrainWait, sessions: number): Promise<DrainWait> {
    try {
      await this.send([
        {
          command: shutdownServerSessions(this.options.backend, line),
          what: `"shutdown sessions" for ${this.options.backend}/${line}`,
          refused: silentUnlessRefused,
        },
      ]);
    } catch (error) {
      if (!(error instanceof BalancerError)) throw error;
      this.options.onWarning?.(`${error.message}: the restart closes them instead`);
      return wait;
    }
    return { ...wait, shut: sessions };
  }

  private async waitUntilDrained(
    server: ServerConfig,
    line: string,
    timeoutMs: number,
  ): Promise<DrainWait & { sessions?: number }> {
    const interval = this.options.pollInterval ?? 10;
    const deadline = Date.now() + timeoutMs;
    const enables = this.enables.get(server.name) ?? 0;
    let maint = false;
    for (;;) {
      const { stat, admin, before } = await this.poll(line);
      const open = stat.sessions + stat.queued + before;
      // Put back by nexus meanwhile (the batch's drain failed elsewhere): not this wait's to undo.
      if ((this.enables.get(server.name) ?? 0) !== enables)
        return { drained: false, open, detail: "put back in rotation while its drain was waited for" };
      if (!admin.drain && !admin.maint) {
        if (Date.now() >= deadline) return { drained: false, open };
        this.options.onWarning?.(
          `${this.options.backend}/${line} was back in rotation while draining (HAProxy restarted?): draining it again`,
        );
        maint = false;
        await this.send([this.stateCommand(line, "drain")]);
        continue;
      }
      if (open === 0 && maint) return { drained: true, open: 0 };
      const late = Date.now() >= deadline;
      if (open === 0 || late) {
        if (!maint) await this.send([this.stateCommand(line, "maint")]);
        maint = true;
        if (late)
          return { drained: open === 0, open, connections: stat.sessions + before, sessions: stat.sessions };
        continue;
      }
      await sleep(interval);
    }
  }

  /**
   * The server's sessions (`show stat`) and administrative state (`show servers state`), together;
   * `before`: its sessions in a process a reload replaced, which still finishes what it had.
   */
  private async poll(name: string): Promise<{ stat: ServerStat; admin: ServerState; before: number }> {
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
        throw new BalancerError(`${this.host}: HAProxy has no server ${this.options.backend}/${name}`);
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
