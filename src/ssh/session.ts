import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import {
  Client,
  type ClientChannel,
  type ConnectConfig,
  type ServerHostKeyAlgorithm,
  type SFTPWrapper,
} from "ssh2";
import { SshError, stdoutOrThrow } from "./errors.js";
import { ForwardedSocket, forwardOpenError } from "./forwarded-socket.js";
import type { HostKeyVerifier } from "./host-keys.js";
import { RemoteShell, ShellLost, type ShellTransport, ShellUnavailable } from "./remote-shell.js";
import { type Tracer, traceName, tracer, traceStart } from "./trace.js";

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** SFTP could not be used at all on this host: no subsystem, or it exited while starting. */
export class SftpUnavailableError extends Error {
  constructor(
    readonly server: string,
    message: string,
  ) {
    super(`${server}: SFTP is unavailable: ${message}`);
    this.name = "SftpUnavailableError";
  }
}

export interface UploadOptions {
  onProgress?: (sent: number, total: number) => void;
  /** Parallel SFTP writes in flight (default 16). */
  concurrency?: number;
  /** Bytes per write (default 128 KiB, capped by the server's limits). */
  chunkSize?: number;
  /** Ctrl-C: the upload stops (its SFTP channel is closed; the `.part` file stays, unrenamed). */
  signal?: AbortSignal;
}

export interface ExecOptions {
  stdin?: string;
  /** A name for errors: "extract", "npm install". */
  what?: string;
  /**
   * Ctrl-C: the command (and everything it started) gets SIGTERM, then SIGKILL 3 s later; the
   * exec rejects with the signal's reason unless the command had succeeded.
   */
  signal?: AbortSignal;
}

export interface StreamOptions {
  /** Written first; stdin then stays open until the command ends or `signal` aborts (EOF then). */
  stdin?: string;
  signal?: AbortSignal;
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
}

/** Runs shell commands on one host: an SSH session, or the local machine for a local balancer. */
export interface CommandRunner {
  readonly name: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Runs commands one after the other, each once the one before has ended (whatever its exit
   * code): in one exchange where the runner can (an SSH session's remote shell).
   */
  execAll?(commands: { command: string; stdin?: string; what?: string }[]): Promise<ExecResult>[];
  run(command: string, options?: ExecOptions): Promise<string>;
}

/** A command whose stdin stays open after it starts (`InteractiveRunner.start`). */
export interface RunningCommand {
  /** Writes to the command's stdin. */
  send(text: string): void;
  /** Writes `text`, if any, then closes the command's stdin (EOF). */
  end(text?: string): void;
  /** Ctrl-C: asks sshd to send the command SIGTERM (OpenSSH 7.9+), and closes the channel 3 s later. */
  kill?(): void;
  /** Settles once the command has ended, as `exec` does. */
  readonly result: Promise<ExecResult>;
}

/** A runner that can also start a command and talk to it later (an SSH session). */
export interface InteractiveRunner extends CommandRunner {
  /**
   * `onStdout` sees the output as it comes (decoded whole characters), and `result.stdout` is then
   * empty: a command that lasts (HAProxy's admin socket connection) does not pile up its output.
   */
  start(command: string, onStdout?: (text: string) => void): RunningCommand;
}

export interface ConnectOptions {
  server: string;
  host: string;
  port: number;
  username: string;
  privateKey?: string | Buffer;
  passphrase?: string;
  agent?: string;
  /** Where the key came from ("$NEXUS_SSH_KEY", a path), for error messages. */
  keySource?: string;
  /** Host key algorithms to offer; undefined: ssh2's defaults. */
  hostKeyAlgorithms?: string[];
  readyTimeout: number;
  keepaliveInterval: number;
  hostKey: HostKeyVerifier;
  /** Lines written to --verbose output. */
  onCommand?: (server: string, command: string) => void;
  /** Records each SSH operation (NEXUS_SSH_TRACE); default: from the environment. */
  trace?: Tracer;
  /** The connection runs over this stream (a channel through a jump host) instead of TCP. */
  sock?: Duplex;
  /** Told once when the connection has closed (or failed to open): a jump host's user leaves. */
  onClose?: () => void;
  /** For messages: how the server is reached, "via bastion.example.com". */
  via?: string;
  /**
   * Run `exec` commands through one remote shell per connection (`remote-shell.ts`) instead of
   * an exec channel each. Default true; a shell that cannot start falls back to channels.
   */
  remoteShell?: boolean;
}

/** A shell that ended is started again at most this many times per connection. */
const SHELL_RESTARTS = 3;

/** One SSH connection per host, reused by every step of a command. */
export class SshSession implements InteractiveRunner {
  private closed = false;
  private lostError: SshError | undefined;
  private sftpPromise: Promise<SFTPWrapper> | undefined;
  /** Ports forwarded back here (`reverseForward`), by the server's port. */
  private reverse: Map<number, { host: string; port: number }> | undefined;
  private readonly trace: Tracer | undefined;
  private remoteShell: RemoteShell | undefined;
  private shellStarts = 0;
  /** Why commands run on exec channels instead of the remote shell, once it failed to start. */
  shellProblem: string | undefined;
  private commandCount = 0;
  /** --verbose: sees each command's result once it has finished (set by whoever shows it). */
  onOutput?: (server: string, command: string, result: ExecResult) => void;

  private constructor(
    private readonly client: Client,
    private readonly options: ConnectOptions,
  ) {
    this.trace = options.trace ?? tracer();
    client.on("close", () => {
      if (!this.closed)
        this.lostError = new SshError(options.server, "closed", "the SSH connection was lost");
      this.closed = true;
      options.onClose?.();
    });
  }

  /** How many commands (and uploads) this session has started: tells whether a read is still fresh. */
  get commands(): number {
    return this.commandCount;
  }

  /** False once the connection was closed or lost. */
  get alive(): boolean {
    return !this.closed;
  }

  get name(): string {
    return this.options.server;
  }

  /** This end's address of the SSH connection: how the server can reach the machine nexus runs on. */
  get localAddress(): string | undefined {
    return (this.client as unknown as { _sock?: { localAddress?: string } })._sock?.localAddress;
  }

  static connect(options: ConnectOptions): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      const config: ConnectConfig = {
        host: options.host,
        port: options.port,
        username: options.username,
        privateKey: options.privateKey,
        passphrase: options.passphrase,
        agent: options.agent,
        readyTimeout: options.readyTimeout,
        keepaliveInterval: options.keepaliveInterval,
        keepaliveCountMax: 3,
        ...(options.sock ? { sock: options.sock } : {}),
        ...(options.hostKeyAlgorithms
          ? { algorithms: { serverHostKey: options.hostKeyAlgorithms as ServerHostKeyAlgorithm[] } }
          : {}),
        // Must return a boolean synchronously: ssh2 takes any truthy value, a Promise included, as "accept".
        hostVerifier: (key: Buffer): boolean => options.hostKey.verify(key),
      };
      let settled = false;
      let agentProblem: string | undefined;
      const traced = traceStart(options.trace ?? tracer(), options.server, "connect", "handshake");
      client.once("ready", () => {
        settled = true;
        traced();
        client.off("error", onError);
        client.on("error", () => {
          // A dropped connection surfaces as "close"; the next command reports it.
        });
        resolve(new SshSession(client, options));
      });
      const onError = (error: Error & { level?: string; code?: string }) => {
        if (settled) return;
        // ssh2 reports an agent failure, then goes on with the next method; keep it for the message.
        if (error.level === "agent") {
          agentProblem = error.message;
          return;
        }
        settled = true;
        client.off("error", onError);
        client.on("error", () => {});
        client.end();
        options.onClose?.();
        reject(classifyConnectError(options, error, agentProblem));
      };
      client.on("error", onError);
      try {
        client.connect(config);
        // ssh2 leaves Nagle's algorithm on, and writes some packets in two pieces (its JS
        // AES-GCM, used where its native addon is absent, as in the bundle): each exec then stalls
        // on the server's delayed ACK, 40-90 ms a command, and the handshake too. Measured on
        // loopback: 48 ms (node_modules) / 92 ms (bundle) per `true`, 6 ms with this.
        client.setNoDelay(true);
      } catch (error) {
        settled = true;
        options.onClose?.();
        reject(new SshError(options.server, "network", (error as Error).message));
      }
    });
  }

  /**
   * A TCP connection from the server to host:port (what `ssh -W` and ProxyJump use): this
   * session as a jump host for another connection.
   */
  forward(host: string, port: number): Promise<ClientChannel> {
    if (this.closed)
      return Promise.reject(
        this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed"),
      );
    const traced = traceStart(this.trace, this.name, "forward", `jump to ${host}:${port}`);
    return new Promise((resolve, reject) => {
      this.client.forwardOut("127.0.0.1", 0, host, port, (error, channel) => {
        traced();
        if (error) {
          reject(
            new SshError(
              this.name,
              "network",
              `the jump host ${this.name} could not open a connection to ${host}:${port}: ${error.message.replace(/^\(SSH\) /, "")}`,
            ),
          );
          return;
        }
        resolve(channel);
      });
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commandCount++;
    const shell = this.shell();
    if (shell) {
      this.options.onCommand?.(this.name, command);
      const traced = traceStart(this.trace, this.name, "shell", traceName(command, options.what));
      try {
        const result = await shell.run({ command, stdin: options.stdin, signal: options.signal });
        traced();
        this.onOutput?.(this.name, command, result);
        return result;
      } catch (error) {
        if (error instanceof ShellLost)
          throw this.lostError ?? new SshError(this.name, "closed", error.message);
        // Never sent: it runs on a channel of its own, as every later command will.
        if (!(error instanceof ShellUnavailable)) throw error;
      }
    }
    return this.execOnChannel(command, options);
  }

  execAll(commands: { command: string; stdin?: string; what?: string }[]): Promise<ExecResult>[] {
    const shell = this.shell();
    if (!shell) return sequentially(commands, (c) => this.execOnChannel(c.command, c));
    this.commandCount += commands.length;
    // One exchange: one trace entry, ended by the last answer.
    const traced = traceStart(
      this.trace,
      this.name,
      "shell",
      commands.map((c) => traceName(c.command, c.what)).join(" + "),
    );
    const results = shell.runAll(commands.map((c) => ({ command: c.command, stdin: c.stdin })));
    void Promise.allSettled(results).then(() => traced());
    let fallback: Promise<ExecResult[]> | undefined;
    return results.map(async (result, i) => {
      const c = commands[i] as (typeof commands)[number];
      this.options.onCommand?.(this.name, c.command);
      try {
        const done = await result;
        this.onOutput?.(this.name, c.command, done);
        return done;
      } catch (error) {
        if (error instanceof ShellLost)
          throw this.lostError ?? new SshError(this.name, "closed", error.message);
        if (!(error instanceof ShellUnavailable)) throw error;
        // None was sent: all of them run on channels, still one after the other.
        fallback ??= Promise.all(sequentially(commands, (each) => this.execOnChannel(each.command, each)));
        return (await fallback)[i] as ExecResult;
      }
    });
  }

  /**
   * $HOME on the server: from the remote shell's hello when it runs (no exchange of its own),
   * else read with a command.
   */
  async home(): Promise<string> {
    const home = await this.shell()?.home();
    if (home?.startsWith("/")) return home;
    return (await this.run('printf %s "$HOME"', { what: "reading $HOME" })).trim();
  }

  /** One exec channel for this command: the server's login shell runs it (what `ssh host cmd` does). */
  execOnChannel(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const running = this.start(command, undefined, options.what);
    running.end(options.stdin);
    if (options.signal) {
      const signal = options.signal;
      const onAbort = () => running.kill?.();
      signal.addEventListener("abort", onAbort, { once: true });
      void running.result.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => {});
      return running.result.then((result) => {
        if (signal.aborted && result.code !== 0) throw signal.reason ?? new Error("aborted");
        return result;
      });
    }
    return running.result;
  }

  /**
   * The connection's remote shell, started on first use and again after it ended (up to
   * SHELL_RESTARTS times); undefined when it cannot be used (exec channels then).
   */
  private shell(): RemoteShell | undefined {
    if (this.options.remoteShell === false || this.shellProblem || this.closed) return undefined;
    if (this.remoteShell?.usable) return this.remoteShell;
    const failure = this.remoteShell?.startFailure;
    if (failure) {
      this.shellProblem = failure;
      return undefined;
    }
    if (this.shellStarts >= SHELL_RESTARTS) return undefined;
    this.shellStarts++;
    // A shell that never says hello (a ForceCommand, a login shell waiting for input) is given up
    // on: nothing was sent to it, so the commands run on exec channels instead, once.
    const shell = new RemoteShell(this.shellTransport(), this.name, {
      startTimeoutMs: this.options.readyTimeout,
    });
    this.remoteShell = shell;
    return shell;
  }

  /** `sh -s` on an exec channel, writes queued until it is open. */
  private shellTransport(): ShellTransport {
    const traced = traceStart(this.trace, this.name, "channel", "starting the remote shell");
    let channel: ClientChannel | undefined;
    const queue: (string | null)[] = [];
    const dataListeners: ((chunk: Buffer) => void)[] = [];
    const exitListeners: (() => void)[] = [];
    const closeListeners: ((reason?: string) => void)[] = [];
    let closedWith: { reason?: string } | undefined;
    const close = (reason?: string) => {
      if (closedWith) return;
      closedWith = { reason };
      for (const listener of closeListeners) listener(reason);
    };
    const flush = () => {
      if (!channel) return;
      for (const item of queue.splice(0)) {
        if (item === null) channel.end();
        else channel.write(item);
      }
    };
    this.options.onCommand?.(this.name, "exec sh -s  # the remote shell: every later command runs in it");
    this.client.exec("exec sh -s", (error, opened) => {
      traced();
      if (error) {
        this.shellProblem = `cannot open a channel for the remote shell: ${error.message}`;
        close(this.shellProblem);
        return;
      }
      opened.on("data", (chunk: Buffer) => {
        for (const listener of dataListeners) listener(chunk);
      });
      // The login shell's own complaints (a broken ~/.bashrc) are not nexus's to print.
      opened.stderr.on("data", () => {});
      opened.on("error", () => {});
      opened.on("exit", () => {
        for (const listener of exitListeners) listener();
      });
      opened.on("close", () => close());
      channel = opened;
      flush();
    });
    return {
      write: (data) => {
        queue.push(data);
        flush();
      },
      end: () => {
        queue.push(null);
        flush();
      },
      onData: (listener) => dataListeners.push(listener),
      onExit: (listener) => exitListeners.push(listener),
      onClose: (listener) => {
        if (closedWith) listener(closedWith.reason);
        else closeListeners.push(listener);
      },
    };
  }

  /**
   * Starts a command and leaves its stdin open: `send` writes to it, `end` closes it (EOF), and
   * `result` settles once the command has ended, as `exec` does. Writes made before the channel
   * is open are queued; `onStdout` sees the output as it comes.
   */
  start(command: string, onStdout?: (text: string) => void, what?: string): RunningCommand {
    this.commandCount++;
    let channel: ClientChannel | undefined;
    const queue: (string | null)[] = [];
    const flush = () => {
      if (!channel) return;
      for (const item of queue.splice(0)) {
        if (item === null) channel.end();
        else channel.write(item);
      }
    };
    const result = new Promise<ExecResult>((resolve, reject) => {
      if (this.closed) {
        reject(this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed"));
        return;
      }
      this.options.onCommand?.(this.name, command);
      const traced = traceStart(this.trace, this.name, "channel", traceName(command, what));
      // Listeners go on inside the callback: ssh2 may emit data, exit and close in the same
      // tick as the callback, before any awaiting code would run.
      this.client.exec(command, (error, opened) => {
        if (error) {
          reject(this.wrap(error));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        const decoder = new StringDecoder("utf8");
        opened.on("data", (chunk: Buffer) => {
          if (onStdout) onStdout(decoder.write(chunk));
          else stdout.push(chunk);
        });
        opened.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        opened.on("exit", (exitCode: number | null) => {
          code = exitCode;
        });
        opened.on("error", (err: Error) => reject(this.wrap(err)));
        opened.on("close", () => {
          traced();
          if (this.closed && code === null) {
            reject(this.lostError ?? new SshError(this.name, "closed", "the SSH connection was lost"));
            return;
          }
          const result = {
            code,
            stdout: Buffer.concat(stdout).toString("utf8"),
            stderr: Buffer.concat(stderr).toString("utf8"),
          };
          this.onOutput?.(this.name, command, result);
          resolve(result);
        });
        channel = opened;
        flush();
      });
    });
    return {
      send(text) {
        queue.push(text);
        flush();
      },
      end(text) {
        if (text) queue.push(text);
        queue.push(null);
        flush();
      },
      kill() {
        if (!channel) return;
        const opened = channel;
        opened.signal("TERM");
        setTimeout(() => opened.close(), 3000).unref();
      },
      result,
    };
  }

  async run(command: string, options: ExecOptions = {}): Promise<string> {
    return stdoutOrThrow(this.name, options.what, await this.exec(command, options));
  }

  /**
   * Runs a command whose output is wanted as it comes (logs, hooks, `nexus exec`). Its stdin stays
   * open while it runs: an abort closes it (commands built to stop on EOF then stop), and closes
   * the channel if the command has not ended 5s later. Resolves with the exit code.
   */
  stream(command: string, options: StreamOptions): Promise<number | null> {
    this.commandCount++;
    if (this.closed)
      return Promise.reject(
        this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed"),
      );
    this.options.onCommand?.(this.name, command);
    const traced = traceStart(this.trace, this.name, "channel", traceName(command));
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) {
          reject(this.wrap(error));
          return;
        }
        let code: number | null = null;
        let force: NodeJS.Timeout | undefined;
        const onAbort = () => {
          channel.end();
          force = setTimeout(() => channel.close(), 5000);
        };
        // A character split across two chunks is decoded whole.
        const out = new StringDecoder("utf8");
        const err = new StringDecoder("utf8");
        channel.on("data", (chunk: Buffer) => options.onStdout(out.write(chunk)));
        channel.stderr.on("data", (chunk: Buffer) => options.onStderr(err.write(chunk)));
        channel.on("exit", (exitCode: number | null) => {
          code = exitCode;
        });
        channel.on("error", (err: Error) => reject(this.wrap(err)));
        channel.on("close", () => {
          traced();
          options.signal?.removeEventListener("abort", onAbort);
          if (force) clearTimeout(force);
          if (this.closed && code === null) {
            reject(this.lostError ?? new SshError(this.name, "closed", "the SSH connection was lost"));
            return;
          }
          resolve(code);
        });
        if (options.stdin) channel.write(options.stdin);
        if (options.signal?.aborted) onAbort();
        else options.signal?.addEventListener("abort", onAbort, { once: true });
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    if (this.closed)
      return Promise.reject(
        this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed"),
      );
    this.sftpPromise ??= new Promise((resolve, reject) => {
      const traced = traceStart(this.trace, this.name, "sftp", "opening SFTP");
      this.client.sftp((error, sftp) => {
        traced();
        if (!error) {
          sftp.on("error", () => {
            // Errors reach the pending request's callback; the wrapper's own event would crash us.
          });
          resolve(sftp);
          return;
        }
        // "Unable to start subsystem: sftp" (none configured), or "Received exit code N while
        // establishing SFTP session" (the subsystem's program failed).
        reject(this.closed ? this.wrap(error) : new SftpUnavailableError(this.name, error.message));
      });
    });
    const pending = this.sftpPromise;
    pending.catch(() => {
      if (this.sftpPromise === pending) this.sftpPromise = undefined;
    });
    return pending;
  }

  /**
   * Opens the SFTP subsystem now (three round trips) so that an upload started later finds it
   * ready; a failure is kept for that upload to report.
   */
  warmUpload(): void {
    this.sftp().catch(() => {});
  }

  /**
   * Uploads a file with SFTP to `remote`: parallel writes into `remote.part`, then a rename,
   * so a partial upload never carries the final name.
   */
  async upload(
    local: string,
    remote: string,
    options: UploadOptions | ((sent: number, total: number) => void) = {},
  ): Promise<void> {
    const {
      onProgress,
      signal,
      // 2 MiB in flight fill the SSH channel's window: more (64 × 255 KiB) is no faster on loopback
      // and costs the CLI 30–40 MB of memory (docs/benchmarks-transfer.md).
      concurrency = 16,
      chunkSize = 128 * 1024,
    } = typeof options === "function" ? { onProgress: options } : options;
    signal?.throwIfAborted();
    this.commandCount++;
    const sftp = await this.sftp();
    signal?.throwIfAborted();
    const partial = `${remote}.part`;
    // fastPut cannot be cancelled: ending its channel fails it (the next upload opens another).
    const abort = () => {
      this.sftpPromise = undefined;
      sftp.end();
    };
    signal?.addEventListener("abort", abort, { once: true });
    try {
      // The file is read in chunks (at most concurrency × chunkSize bytes in memory), never whole.
      const traced = traceStart(this.trace, this.name, "sftp", "upload (open, writes, close)");
      await new Promise<void>((resolve, reject) => {
        sftp.fastPut(
          local,
          partial,
          { concurrency, chunkSize, step: (sent, _chunk, total) => onProgress?.(sent, total) },
          (error) => (error ? reject(this.closed ? this.wrap(error) : error) : resolve()),
        );
      }).finally(traced);
    } finally {
      signal?.removeEventListener("abort", abort);
    }
    signal?.throwIfAborted();
    const renamed = traceStart(this.trace, this.name, "sftp", "upload (rename)");
    await new Promise<void>((resolve, reject) => {
      sftp.rename(partial, remote, (error) => {
        if (!error) return resolve();
        // SFTP rename refuses to overwrite; fall back to the posix-rename extension.
        sftp.ext_openssh_rename(partial, remote, (second) => (second ? reject(second) : resolve()));
      });
    }).finally(renamed);
  }

  /**
   * A port on the server (its 127.0.0.1, any free port) whose connections come back over this SSH
   * connection to `localHost:localPort` here (like `ssh -R`): how a server that cannot reach this
   * machine (behind a jump host) fetches from it. `close` stops the server listening.
   */
  async reverseForward(localHost: string, localPort: number): Promise<{ port: number; close(): void }> {
    if (this.closed)
      throw this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed");
    if (!this.reverse) {
      const targets = new Map<number, { host: string; port: number }>();
      this.reverse = targets;
      this.client.on("tcp connection", (info, accept, reject) => {
        const target = targets.get(info.destPort);
        if (!target) return reject();
        const channel = accept();
        const socket = connect({ host: target.host, port: target.port });
        socket.pipe(channel).pipe(socket);
        socket.on("error", () => channel.close());
        channel.on("error", () => socket.destroy());
        channel.on("close", () => socket.destroy());
        socket.on("close", () => channel.close());
      });
    }
    const targets = this.reverse;
    const port = await new Promise<number>((resolve, reject) => {
      this.client.forwardIn("127.0.0.1", 0, (error, bound) => {
        if (error)
          reject(
            new SshError(
              this.name,
              "network",
              `the server refused to forward a port back to nexus (AllowTcpForwarding?): ${error.message}`,
            ),
          );
        else resolve(bound);
      });
    });
    targets.set(port, { host: localHost, port: localPort });
    return {
      port,
      close: () => {
        targets.delete(port);
        if (!this.closed) this.client.unforwardIn("127.0.0.1", port, () => {});
      },
    };
  }

  /**
   * A connection from the server to host:port (ssh2 `forwardOut`, like one connection of
   * `ssh -L`), as a socket node:http can use (`ForwardedSocket`). One round trip; a connect the
   * server could not make rejects as a TCP connect from there would (ECONNREFUSED: nothing
   * listening). `what`: who opens it, for the trace ("health gate").
   */
  forwardSocket(host: string, port: number, what: string): Promise<Duplex> {
    if (this.closed)
      return Promise.reject(
        this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed"),
      );
    const traced = traceStart(this.trace, this.name, "forward", `${what} ${host}:${port}`);
    return new Promise((resolve, reject) => {
      try {
        this.client.forwardOut("127.0.0.1", 0, host, port, (error, channel) => {
          if (error) {
            const failed = forwardOpenError(error, host, port);
            traced(failed.code);
            reject(failed);
            return;
          }
          traced();
          resolve(new ForwardedSocket(channel));
        });
      } catch (error) {
        // ssh2 throws when the connection is gone.
        traced("closed");
        reject(this.wrap(error as Error));
      }
    });
  }

  close(): void {
    this.remoteShell?.close();
    if (!this.closed) {
      this.closed = true;
      this.client.end();
    }
  }

  private wrap(error: Error): Error {
    if (this.closed)
      return this.lostError ?? new SshError(this.name, "closed", "the SSH connection was lost");
    return new SshError(this.name, "network", error.message);
  }
}

/** Runs each after the one before has settled; a result per item. */
function sequentially<T, R>(items: T[], run: (item: T) => Promise<R>): Promise<R>[] {
  let previous: Promise<unknown> = Promise.resolve();
  return items.map((item) => {
    const next = previous.then(
      () => run(item),
      () => run(item),
    );
    previous = next.catch(() => {});
    return next;
  });
}

function classifyConnectError(
  options: ConnectOptions,
  error: Error & { level?: string; code?: string },
  agentProblem?: string,
): SshError {
  const where = `${options.username}@${options.host}:${options.port}${options.via ? ` (${options.via})` : ""}`;
  const hostKeyProblem = options.hostKey.problem();
  if (hostKeyProblem) return new SshError(options.server, "host-key", hostKeyProblem);
  if (options.hostKeyAlgorithms && /no matching host key format/.test(error.message)) {
    return new SshError(
      options.server,
      "host-key",
      [
        `HOST KEY CHANGED for ${where}? It offers none of the key types known for it in known_hosts (${options.hostKeyAlgorithms.join(", ")}).`,
        "  A re-keyed server, or a man-in-the-middle: check with the server's admin before trusting a new key.",
      ].join("\n"),
    );
  }
  if (error.level === "client-authentication") {
    return new SshError(
      options.server,
      "auth",
      `authentication failed for ${where} (tried: ${describeAuth(options)}${agentProblem ? `; the agent failed: ${agentProblem}` : ""}); check ssh.privateKey, ssh.user or the agent`,
    );
  }
  if (error.code === "ECONNREFUSED")
    return new SshError(options.server, "refused", `connection refused by ${where}`);
  if (error.level === "client-timeout" || error.code === "ETIMEDOUT") {
    return new SshError(options.server, "timeout", `timed out connecting to ${where}`);
  }
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") {
    return new SshError(options.server, "network", `cannot resolve ${options.host}`);
  }
  return new SshError(options.server, "network", `cannot connect to ${where}: ${error.message}`);
}

function describeAuth(options: ConnectOptions): string {
  const methods: string[] = [];
  if (options.privateKey) methods.push(options.keySource ? `key ${options.keySource}` : "private key");
  if (options.agent) methods.push(`agent at ${options.agent}`);
  return methods.length > 0
    ? methods.join(", ")
    : "no key: set ssh.privateKey, NEXUS_SSH_KEY or SSH_AUTH_SOCK";
}
