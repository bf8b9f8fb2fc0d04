import { createHash } from "node:crypto";
import { nexusCommand } from "../../config/invocation.js";
import type { ServerConfig } from "../../config/load.js";
import { script } from "../../remote/op.js";
import { procNetTcpAddress } from "../../remote/proc-net-tcp.js";
import type { CommandRunner, ExecResult } from "../../ssh/session.js";
import { sleep } from "../../util/sleep.js";
import type { BackendState, Balancer, DrainWait, RotationChange } from "../balancer.js";
import { BalancerError } from "../balancer-error.js";
import {
  APPLY_EXIT,
  APPLY_SCRIPT,
  describeDrainWait,
  parseWaitDrained,
  readFile,
  WAIT_DRAINED_SCRIPT,
} from "./scripts.js";
import { listUpstreamServers, setServerAddress, setServerDown } from "./upstream.js";

const MAX_APPLY_ATTEMPTS = 5;

/** sudo without a rule (or with -n and a password needed) says so; tell how to allow it. */
function sudoHint(output: string): string {
  return /sudo:.*password is required|is not allowed to execute|not in the sudoers/.test(output)
    ? `\n  fix: allow the login user to run the balancer's testCommand and reloadCommand with sudo, without a password (a sudoers NOPASSWD rule; see docs/servers.md, or \`${nexusCommand("setup", "--sudo")}\`)`
    : "";
}

export interface NginxOptions {
  upstreamFile: string;
  upstream?: string;
  testCommand: string;
  reloadCommand: string;
  pidFile: string;
  /** Told when a reload cannot be confirmed (no readable pid file). */
  onWarning?: (message: string) => void;
}

/**
 * Open-source Nginx has no runtime API: draining marks `server ... down;` in the upstream file,
 * tests the config, and reloads. Reload is graceful: old workers finish in-flight requests.
 * The file is only ever left in a state that `nginx -t` accepted.
 */
export class NginxBalancer implements Balancer {
  readonly sharesChanges = true;
  /** Workers retired by the last drain's reload: they may still hold requests to a drained server. */
  private retiring: number[] = [];
  /**
   * The upstream file as this driver last read or wrote it: the next edit starts from it instead
   * of reading the file again (one round trip less per change). Safe because APPLY_SCRIPT writes
   * only if the file still holds exactly this (its sha256); if another run edited it, the edit is
   * redone on a fresh read.
   */
  private known: string | undefined;
  /** waitDrained calls of this tick, answered by one remote wait (waitTogether). */
  private waiting: {
    server: ServerConfig;
    address: string;
    timeoutMs: number;
    resolve(result: DrainWait): void;
    reject(error: unknown): void;
  }[] = [];

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: NginxOptions,
  ) {}

  get host(): string {
    return this.runner.name;
  }

  private async read(): Promise<string> {
    this.known = await this.runner.run(readFile(this.options.upstreamFile), {
      what: `reading ${this.options.upstreamFile}`,
    });
    return this.known;
  }

  async state(servers: readonly ServerConfig[]): Promise<BackendState[]> {
    const text = await this.read();
    const listed = listUpstreamServers(text, this.options.upstream);
    return servers.map((server) => {
      const address = this.addressIn(text, server);
      const entry = listed.find((item) => item.address === address);
      return {
        server: server.name,
        upstream: address,
        present: !!entry,
        inRotation: !!entry && !entry.down,
        ...(entry ? { address } : {}),
      };
    });
  }

  /**
   * Where the server is listed in `text`: its upstream address, or the same host on app.surgePort
   * (the surge strategy moves it between the two); its upstream address when neither is listed.
   */
  private addressIn(text: string | undefined, server: ServerConfig): string {
    const alternate = server.surgeUpstream;
    if (text === undefined || alternate === undefined) return server.upstream;
    const listed = listUpstreamServers(text, this.options.upstream);
    if (listed.some((item) => item.address === server.upstream)) return server.upstream;
    return listed.some((item) => item.address === alternate) ? alternate : server.upstream;
  }

  async apply(change: RotationChange): Promise<void> {
    // What the edit leaves in rotation by the version the capacity guard judged (the first try).
    let judged: number | undefined;
    const recheck = (inRotation: number) => {
      const min = change.keepInRotation?.min ?? 0;
      if (judged === undefined) judged = inRotation;
      else if (inRotation < judged && inRotation < min) {
        const names = (change.drain ?? []).map((s) => s.name).join(", ");
        throw new BalancerError(
          `capacity guard: another command changed ${this.options.upstreamFile} since the guard looked: draining ${names} now would leave ${inRotation} server(s) in rotation (minimum ${min}); nothing was changed`,
        );
      }
    };
    for (let attempt = 1; ; attempt++) {
      const result = await this.tryApply(change, recheck);
      if (result === "changed") {
        // Another run edited the file between our read and our write: redo the edit on its version.
        if (attempt < MAX_APPLY_ATTEMPTS) continue;
        throw new BalancerError(
          `${this.host}: ${this.options.upstreamFile} kept changing under another run (${MAX_APPLY_ATTEMPTS} tries); nothing was changed`,
        );
      }
      return;
    }
  }

  private async tryApply(
    change: RotationChange,
    recheck: (inRotation: number) => void,
  ): Promise<"done" | "changed"> {
    // Set again below by a drain's reload; no other change leaves workers that matter to a drain.
    this.retiring = [];
    const cached = this.known;
    const original = cached ?? (await this.read());
    let text = original;
    for (const { server, to } of change.move ?? [])
      text = setServerAddress(text, this.addressIn(text, server), to, this.options.upstream).text;
    for (const [servers, down] of [
      [change.enable ?? [], false],
      [change.drain ?? [], true],
    ] as const) {
      for (const server of servers)
        text = setServerDown(text, this.addressIn(text, server), down, this.options.upstream).text;
    }
    // Nothing to change, by a copy that may be stale: only a fresh read can say so.
    if (text === original) return cached === undefined ? "done" : this.readAgain();
    const keep = change.keepInRotation;
    if (keep && (change.drain ?? []).length > 0) {
      const fleet = new Set(keep.servers.flatMap((s) => [s.upstream, s.surgeUpstream ?? s.upstream]));
      recheck(
        listUpstreamServers(text, this.options.upstream).filter((e) => !e.down && fleet.has(e.address))
          .length,
      );
    }
    const file = this.options.upstreamFile;
    // A move leaves the old workers routing to the old address, as a drain does to the drained one.
    const draining = (change.drain ?? []).length > 0 || (change.move ?? []).length > 0;
    // One round trip: write, test, reload and confirm, under a lock on the host; the file is
    // restored on the host itself if the test or the reload fails, so it is never left in a
    // state nginx -t refused.
    const command = script(
      APPLY_SCRIPT,
      file,
      createHash("sha256").update(original).digest("hex"),
      this.options.testCommand,
      this.options.reloadCommand,
      this.options.pidFile,
      30,
      draining ? "retired" : "started",
    );
    const result = await this.runner.exec(command, { stdin: text });
    const written: (number | null)[] = [0, APPLY_EXIT.reloadUnconfirmed, APPLY_EXIT.reloadTimeout];
    if (written.includes(result.code)) this.known = text;
    if ((await this.applied(result)) === "changed") return "changed";
    // Only a drain's reload retires workers that may still route to a drained server: an
    // enable's old workers had every server this change leaves out already out.
    if (draining)
      this.retiring = (/@old ([\d ]*)/.exec(result.stdout)?.[1] ?? "")
        .split(" ")
        .map(Number)
        .filter((pid) => pid > 0);
    return "done";
  }

  /**
   * What APPLY_SCRIPT's exit says: in force ("done"), the file changed under us ("changed": read
   * and edit again), or an error naming the fix (a refused test leaves the file as it was).
   */
  private async applied(result: ExecResult): Promise<"done" | "changed"> {
    const file = this.options.upstreamFile;
    const output = (result.stderr || result.stdout).trim();
    switch (result.code) {
      case 0:
        break;
      case APPLY_EXIT.changed:
        return this.readAgain();
      case APPLY_EXIT.cannotWrite:
        throw new BalancerError(
          `${this.host}: cannot write ${file}: ${output}\n  fix: let the login user edit it in place (e.g. chgrp <its group> ${file} && chmod g+w ${file}; see docs/servers.md)`,
        );
      case APPLY_EXIT.noSha256sum:
        throw new BalancerError(
          `${this.host}: sha256sum (coreutils) is missing on the balancer host; nexus needs it to edit ${file} safely`,
        );
      case APPLY_EXIT.lockTimeout:
        throw new BalancerError(`${this.host}: ${output}; nothing was changed`);
      case APPLY_EXIT.testFailed:
        throw new BalancerError(
          `${this.host}: the Nginx config test failed, so nothing was reloaded and ${file} was restored:\n${output}${sudoHint(output)}`,
        );
      case APPLY_EXIT.reloadUnconfirmed:
        this.options.onWarning?.(
          `cannot read the Nginx pid file ${this.options.pidFile} (set balancer.pidFile): waiting 1s for the reload instead of confirming it`,
        );
        await sleep(1000);
        return "done";
      case APPLY_EXIT.reloadTimeout:
        throw new BalancerError(
          `${this.host}: Nginx reloaded but its old workers did not hand over within 5s`,
        );
      default:
        throw new BalancerError(
          `${this.host}: the Nginx reload failed, ${file} was restored:\n${output}${sudoHint(output)}`,
        );
    }
    return "done";
  }

  private readAgain(): "changed" {
    this.known = undefined;
    return "changed";
  }

  /**
   * Drained means: no connection from Nginx to the server remains, and every worker from before
   * the drain has exited. A retiring worker ("shutting down") still serves requests on client
   * connections it had accepted, with the old server list, so it could still send one there.
   * The servers of a batch are waited for together: their calls, made in the same tick, become
   * one remote wait (see WAIT_DRAINED_SCRIPT).
   */
  waitDrained(server: ServerConfig, timeoutMs: number): Promise<DrainWait> {
    return this.waitLeft(server, this.addressIn(this.known, server), timeoutMs);
  }

  /** As `waitDrained`, for the server's old address after a move (the workers the move's reload retired). */
  waitLeft(server: ServerConfig, address: string, timeoutMs: number): Promise<DrainWait> {
    return new Promise((resolve, reject) => {
      if (this.waiting.push({ server, address, timeoutMs, resolve, reject }) === 1)
        queueMicrotask(() => void this.waitTogether());
    });
  }

  private async waitTogether(): Promise<void> {
    const waits = this.waiting.splice(0);
    try {
      const addresses = waits.map((w) => procNetTcpAddress(w.address));
      const command = script(
        WAIT_DRAINED_SCRIPT,
        Math.max(...waits.map((w) => w.timeoutMs)),
        [...new Set(addresses.filter((a) => a !== undefined))].join(" "),
        ...this.retiring,
      );
      const output = await this.runner.run(command, { what: "waiting for connections to close" });
      let counts: ReturnType<typeof parseWaitDrained>;
      try {
        counts = parseWaitDrained(output);
      } catch (error) {
        throw new BalancerError(`${this.host}: ${(error as Error).message}`);
      }
      waits.forEach((w, i) => {
        const address = addresses[i];
        const connections = address ? (counts.open.get(address) ?? 0) : undefined;
        const open = (connections ?? 0) + counts.workers;
        w.resolve({
          drained: open === 0,
          open,
          ...(connections !== undefined ? { connections } : {}),
          detail: describeDrainWait(counts, connections),
        });
      });
    } catch (error) {
      for (const w of waits) w.reject(error);
    }
  }
}
