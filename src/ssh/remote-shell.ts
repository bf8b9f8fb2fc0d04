import { randomBytes } from "node:crypto";
import { shq } from "../remote/quote.js";
import { REMOTE_SHELL_SCRIPT } from "./remote-shell-script.js";

/**
 * One shell per server for a whole nexus command (issue 30): started once on an exec channel
 * (`sh -s`, one login-shell start), it runs every command it is sent in the background, each in its
 * own process group, and answers with each command's exit code, stdout and stderr, framed so
 * that results of commands running at once never mix. A command then costs one round trip and no
 * shell start instead of a channel open, an exec request and the user's login shell (~/.bashrc).
 * The server side is REMOTE_SHELL_SCRIPT.
 */

/** What the shell runs on: an exec channel of `sh -s` (or a local `sh -s` in tests). */
export interface ShellTransport {
  write(data: string): void;
  /** Closes stdin: the shell ends once it has read what came before. */
  end(): void;
  onData(listener: (chunk: Buffer) => void): void;
  /**
   * The shell process exited: it takes no more commands, but results of commands in flight still
   * come (its writer sends them) until the channel closes.
   */
  onExit(listener: () => void): void;
  /** The channel closed; `reason` when it could not be opened at all. */
  onClose(listener: (reason?: string) => void): void;
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The shell could not be started here: the caller runs the command another way (an exec channel). */
export class ShellUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShellUnavailable";
  }
}

/** The shell ended while commands ran (killed, or its output made no sense): their outcome is unknown. */
export class ShellLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShellLost";
  }
}

export interface ShellRequest {
  command: string;
  stdin?: string;
  /** Ctrl-C: the command's process group gets SIGTERM, SIGKILL `killAfterMs` later if still there. */
  signal?: AbortSignal;
  /** Ends the command's process group (as `signal` does) after this long; the result says so. */
  timeoutMs?: number;
}

/** A command ended by its timeout: the exit code the shell reports for it. */
export const TIMED_OUT_CODE = 124;

interface Pending {
  id: number;
  request: ShellRequest;
  /** Sent with the commands around it, to run one after the other (`runAll`). */
  batch?: Pending[];
  resolve(result: ShellResult): void;
  reject(error: Error): void;
  sent: boolean;
  timedOut: boolean;
  cleanup(): void;
}

/** "exited": takes no new command, still reads the results of those in flight. */
type State = "starting" | "ready" | "exited" | "unavailable" | "ended";

const HEADER = /^@nx (\d+) (\d+)$/;

export class RemoteShell {
  private state: State = "starting";
  private readonly token = randomBytes(9).toString("hex");
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer: Buffer = Buffer.alloc(0);
  /** The frame being read: its header, and how far its end has been looked for. */
  private frame: { id: number; code: number; searched: number } | undefined;
  private endReason: string | undefined;
  private readonly startTimer: NodeJS.Timeout | undefined;
  /** $HOME on the server, as the shell said it in its hello. */
  private homeDir: string | undefined;
  private readonly started: Promise<string | undefined>;
  private settleStarted: (home: string | undefined) => void = () => {};

  constructor(
    private readonly transport: ShellTransport,
    /** For messages: the server's name. */
    private readonly server: string,
    private readonly options: { startTimeoutMs?: number; killAfterMs?: number } = {},
  ) {
    this.started = new Promise((resolve) => {
      this.settleStarted = resolve;
    });
    transport.onData((chunk) => this.receive(chunk));
    transport.onExit(() => {
      if (this.state === "ready") this.state = "exited";
    });
    transport.onClose((reason) => this.closed(reason));
    transport.write(`_nx_token=${this.token}\n${REMOTE_SHELL_SCRIPT}`);
    const startTimeout = options.startTimeoutMs ?? 0;
    if (startTimeout > 0) {
      this.startTimer = setTimeout(() => {
        if (this.state === "starting")
          this.unavailable(`the remote shell did not start within ${startTimeout / 1000}s`);
      }, startTimeout);
      this.startTimer.unref();
    }
  }

  /** Commands can still be sent (started, or starting). */
  get usable(): boolean {
    return this.state === "starting" || this.state === "ready";
  }

  get ready(): boolean {
    return this.state === "ready";
  }

  /** Why it never started (then it will not on this connection either); undefined otherwise. */
  get startFailure(): string | undefined {
    return this.state === "unavailable" ? this.endReason : undefined;
  }

  /** $HOME on the server once the shell has started; undefined if it could not start. */
  home(): Promise<string | undefined> {
    return this.started;
  }

  /** Runs `command` as `sh -c` would; rejects with ShellUnavailable if the shell never started. */
  run(request: ShellRequest): Promise<ShellResult> {
    return this.runAll([request])[0] as Promise<ShellResult>;
  }

  /**
   * Runs the commands one after the other (each starts once the one before has ended, whatever
   * its exit code), in one exchange: a result per command.
   */
  runAll(requests: ShellRequest[]): Promise<ShellResult>[] {
    const batch: Pending[] = [];
    const results = requests.map(
      (request) =>
        new Promise<ShellResult>((resolve, reject) => {
          if (this.state === "unavailable")
            return reject(new ShellUnavailable(this.endReason ?? "the remote shell did not start"));
          if (this.state === "ended" || this.state === "exited")
            return reject(new ShellLost(this.endReason ?? "the remote shell has ended"));
          if (request.signal?.aborted) return reject(request.signal.reason ?? new Error("aborted"));
          const id = this.nextId++;
          const timers: NodeJS.Timeout[] = [];
          const onAbort = () => this.stop(entry, "TERM");
          const entry: Pending = {
            id,
            request,
            resolve,
            reject,
            sent: false,
            timedOut: false,
            cleanup: () => {
              for (const timer of timers) clearTimeout(timer);
              request.signal?.removeEventListener("abort", onAbort);
            },
          };
          this.pending.set(id, entry);
          batch.push(entry);
          request.signal?.addEventListener("abort", onAbort, { once: true });
          if (request.timeoutMs !== undefined && request.timeoutMs > 0) {
            timers.push(
              setTimeout(() => {
                entry.timedOut = true;
                this.stop(entry, "TERM");
              }, request.timeoutMs),
            );
          }
        }),
    );
    for (const entry of batch) entry.batch = batch;
    if (this.state === "ready" && batch.length > 0) this.send(batch);
    return results;
  }

  /** Closes stdin: the shell exits once it has read every request; running commands finish. */
  close(): void {
    if (this.state === "starting" || this.state === "ready") this.transport.end();
  }

  /** One request line: a command, or commands to run one after the other (consecutive ids). */
  private send(batch: Pending[]): void {
    const live = batch.filter((entry) => this.pending.has(entry.id) && !entry.sent);
    if (live.length === 0) return;
    const words = live.flatMap((e) => [shq(e.request.stdin ?? ""), shq(e.request.command)]);
    const first = live[0] as Pending;
    // Ids in a batch are consecutive; one aborted before it was sent leaves a gap: each alone then.
    if (live.length > 1 && !live.every((e, i) => e.id === first.id + i)) {
      for (const entry of live) this.send([entry]);
      return;
    }
    for (const entry of live) entry.sent = true;
    if (live.length > 1) {
      this.transport.write(`_nx_seq ${first.id} ${words.join(" ")}\n`);
      return;
    }
    // One that may have to be stopped runs in a process group of its own.
    const stoppable = first.request.signal !== undefined || first.request.timeoutMs !== undefined;
    this.transport.write(`_nx_run ${first.id} ${words.join(" ")}${stoppable ? " k" : ""}\n`);
  }

  /** SIGTERM to the command's process group, then SIGKILL if it is still there. */
  private stop(entry: Pending, signal: "TERM" | "KILL"): void {
    if (!this.pending.has(entry.id)) return;
    if (!entry.sent) {
      // Never sent: it never ran.
      this.pending.delete(entry.id);
      entry.cleanup();
      entry.reject(entry.request.signal?.reason ?? new Error("aborted"));
      return;
    }
    if (this.state !== "ready") return; // exited: it takes no request, and kills nothing
    this.transport.write(`_nx_kill ${entry.id} ${signal}\n`);
    if (signal === "TERM") {
      const timer = setTimeout(() => this.stop(entry, "KILL"), this.options.killAfterMs ?? 3000);
      timer.unref();
      const cleanup = entry.cleanup;
      entry.cleanup = () => {
        clearTimeout(timer);
        cleanup();
      };
    }
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.state === "starting") {
      const hello = Buffer.from(`@nx-hello ${this.token} `);
      const at = this.buffer.indexOf(hello);
      const newline = at < 0 ? -1 : this.buffer.indexOf(10, at);
      if (newline < 0) {
        const fail = /(?:^|\n)@nx-fail ([^\n]*)\n/.exec(this.buffer.toString("latin1"));
        if (fail) this.unavailable(`the remote shell could not start: ${fail[1]}`);
        return;
      }
      this.homeDir = this.buffer.subarray(at + hello.length, newline).toString("utf8");
      this.buffer = this.buffer.subarray(newline + 1);
      this.state = "ready";
      if (this.startTimer) clearTimeout(this.startTimer);
      this.settleStarted(this.homeDir);
      const batches = new Set([...this.pending.values()].map((entry) => entry.batch ?? [entry]));
      for (const batch of batches) this.send(batch);
    }
    this.readFrames();
  }

  /**
   * Frames: `@nx ID CODE`, stdout, `\n@nx-sep TOKEN\n`, stderr, `\n@nx-end TOKEN\n` (see
   * REMOTE_SHELL_SCRIPT). Only the token's lines delimit a result: no byte count to trust.
   */
  private readFrames(): void {
    const sep = Buffer.from(`\n@nx-sep ${this.token}\n`);
    const end = Buffer.from(`\n@nx-end ${this.token}\n`);
    for (;;) {
      if (!this.frame) {
        const newline = this.buffer.indexOf(10);
        if (newline < 0) return;
        const line = this.buffer.subarray(0, newline).toString("latin1");
        const match = HEADER.exec(line);
        if (!match) {
          this.lost(`the remote shell sent something unexpected: ${JSON.stringify(line.slice(0, 80))}`);
          return;
        }
        this.buffer = this.buffer.subarray(newline + 1);
        this.frame = { id: Number(match[1]), code: Number(match[2]), searched: 0 };
      }
      // Searched again from where the last search stopped (less the marker's length): a large
      // output arrives in many chunks.
      const from = Math.max(0, this.frame.searched - end.length);
      const last = this.buffer.indexOf(end, from);
      if (last < 0) {
        this.frame.searched = this.buffer.length;
        return;
      }
      const middle = this.buffer.lastIndexOf(sep, last);
      const { id, code } = this.frame;
      const stdout = middle < 0 ? "" : this.buffer.subarray(0, middle).toString("utf8");
      const stderr = this.buffer.subarray(middle < 0 ? 0 : middle + sep.length, last).toString("utf8");
      this.buffer = this.buffer.subarray(last + end.length);
      this.frame = undefined;
      const entry = this.pending.get(id);
      if (!entry) continue;
      this.pending.delete(id);
      entry.cleanup();
      if (entry.request.signal?.aborted && code !== 0) {
        entry.reject(entry.request.signal.reason ?? new Error("aborted"));
        continue;
      }
      entry.resolve({ code: entry.timedOut ? TIMED_OUT_CODE : code, stdout, stderr });
    }
  }

  private unavailable(reason: string): void {
    if (this.state !== "starting") return;
    this.state = "unavailable";
    this.settleStarted(undefined);
    this.endReason = reason;
    if (this.startTimer) clearTimeout(this.startTimer);
    this.transport.end();
    // Nothing was sent before the shell said hello: the caller may run these another way.
    for (const entry of this.takeAll()) entry.reject(new ShellUnavailable(reason));
  }

  private lost(reason: string): void {
    this.state = "ended";
    this.endReason = reason;
    this.transport.end();
    for (const entry of this.takeAll()) entry.reject(new ShellLost(`${this.server}: ${reason}`));
  }

  private closed(reason?: string): void {
    if (this.state === "starting") {
      this.unavailable(reason ?? "the remote shell ended before it started");
      return;
    }
    if (this.state === "ended" || this.state === "unavailable") return;
    this.state = "ended";
    this.endReason ??= reason ?? "the remote shell ended";
    const running = this.takeAll();
    for (const entry of running) {
      entry.reject(
        new ShellLost(
          `${this.server}: the remote shell ended while a command ran (${this.endReason}): its outcome is unknown`,
        ),
      );
    }
  }

  private takeAll(): Pending[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const entry of all) entry.cleanup();
    return all;
  }
}
