import { createServer, type Server } from "node:net";
import { Client, type ConnectConfig, type SFTPWrapper } from "ssh2";
import { RemoteCommandError, SshError } from "./errors.js";
import type { HostKeyCheck } from "./host-keys.js";

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  stdin?: string;
  /** A name for errors: "extract", "npm install". */
  what?: string;
}

/** Runs shell commands on one host: an SSH session, or the local machine for a local balancer. */
export interface CommandRunner {
  readonly name: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  run(command: string, options?: ExecOptions): Promise<string>;
}

export interface ConnectOptions {
  server: string;
  host: string;
  port: number;
  username: string;
  privateKey?: string | Buffer;
  passphrase?: string;
  agent?: string;
  readyTimeout: number;
  keepaliveInterval: number;
  hostKey: HostKeyCheck;
  /** Lines written to --verbose output. */
  onCommand?: (server: string, command: string) => void;
}

/** One SSH connection per host, reused by every step of a command. */
export class SshSession implements CommandRunner {
  private closed = false;
  private lostError: SshError | undefined;
  private sftpPromise: Promise<SFTPWrapper> | undefined;
  private tunnels: Server[] = [];

  private constructor(
    private readonly client: Client,
    private readonly options: ConnectOptions,
  ) {
    client.on("close", () => {
      if (!this.closed)
        this.lostError = new SshError(options.server, "closed", "the SSH connection was lost");
      this.closed = true;
    });
  }

  get name(): string {
    return this.options.server;
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
        // Must return a boolean synchronously: ssh2 takes any truthy value, a Promise included, as "accept".
        hostVerifier: (key: Buffer): boolean => options.hostKey.verify(key),
      };
      let settled = false;
      client.once("ready", () => {
        settled = true;
        client.on("error", () => {
          // A dropped connection surfaces as "close"; the next command reports it.
        });
        resolve(new SshSession(client, options));
      });
      client.once("error", (error: Error & { level?: string; code?: string }) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(classifyConnectError(options, error));
      });
      try {
        client.connect(config);
      } catch (error) {
        settled = true;
        reject(new SshError(options.server, "network", (error as Error).message));
      }
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.closed)
      throw this.lostError ?? new SshError(this.name, "closed", "the SSH connection is closed");
    this.options.onCommand?.(this.name, command);
    return new Promise((resolve, reject) => {
      // Listeners go on inside the callback: ssh2 may emit data, exit and close in the same
      // tick as the callback, before any awaiting code would run.
      this.client.exec(command, (error, channel) => {
        if (error) {
          reject(this.wrap(error));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        channel.on("data", (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        channel.on("exit", (exitCode: number | null) => {
          code = exitCode;
        });
        channel.on("error", (err: Error) => reject(this.wrap(err)));
        channel.on("close", () => {
          if (this.closed && code === null) {
            reject(this.lostError ?? new SshError(this.name, "closed", "the SSH connection was lost"));
            return;
          }
          resolve({
            code,
            stdout: Buffer.concat(stdout).toString("utf8"),
            stderr: Buffer.concat(stderr).toString("utf8"),
          });
        });
        channel.end(options.stdin ?? undefined);
      });
    });
  }

  async run(command: string, options: ExecOptions = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      throw new RemoteCommandError(
        this.name,
        options.what ?? "command",
        result.code,
        result.stderr || result.stdout,
      );
    }
    return result.stdout;
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpPromise ??= new Promise((resolve, reject) => {
      this.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp)));
    });
    const pending = this.sftpPromise;
    pending.catch(() => {
      if (this.sftpPromise === pending) this.sftpPromise = undefined;
    });
    return pending;
  }

  /**
   * Uploads a file with SFTP to `remote`: parallel writes into `remote.part`, then a rename,
   * so a partial upload never carries the final name.
   */
  async upload(
    local: string,
    remote: string,
    onProgress?: (sent: number, total: number) => void,
  ): Promise<void> {
    const sftp = await this.sftp();
    const partial = `${remote}.part`;
    await new Promise<void>((resolve, reject) => {
      sftp.fastPut(
        local,
        partial,
        { concurrency: 64, chunkSize: 32 * 1024, step: (sent, _chunk, total) => onProgress?.(sent, total) },
        (error) => (error ? reject(error) : resolve()),
      );
    });
    await new Promise<void>((resolve, reject) => {
      sftp.rename(partial, remote, (error) => {
        if (!error) return resolve();
        // SFTP rename refuses to overwrite; fall back to the posix-rename extension.
        sftp.ext_openssh_rename(partial, remote, (second) => (second ? reject(second) : resolve()));
      });
    });
  }

  /**
   * Opens a local listener on 127.0.0.1 whose connections are forwarded through this SSH
   * connection to host:port as seen from the server (like `ssh -L`). Returns the local port.
   */
  async tunnel(host: string, port: number): Promise<number> {
    const server = createServer((socket) => {
      this.client.forwardOut("127.0.0.1", 0, host, port, (error, channel) => {
        if (error) {
          socket.destroy();
          return;
        }
        socket.pipe(channel).pipe(socket);
        socket.on("error", () => channel.close());
        channel.on("error", () => socket.destroy());
        channel.on("close", () => socket.destroy());
        socket.on("close", () => channel.close());
      });
    });
    this.tunnels.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("tunnel listener has no port");
    return address.port;
  }

  close(): void {
    for (const server of this.tunnels) server.close();
    this.tunnels = [];
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

function classifyConnectError(
  options: ConnectOptions,
  error: Error & { level?: string; code?: string },
): SshError {
  const where = `${options.username}@${options.host}:${options.port}`;
  const hostKeyProblem = options.hostKey.problem();
  if (hostKeyProblem) return new SshError(options.server, "host-key", hostKeyProblem);
  if (error.level === "client-authentication") {
    return new SshError(
      options.server,
      "auth",
      `authentication failed for ${where} (tried: ${describeAuth(options)}); check ssh.privateKey, ssh.user or the agent`,
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
  if (options.privateKey) methods.push("private key");
  if (options.agent) methods.push("agent");
  return methods.length > 0
    ? methods.join(", ")
    : "no key: set ssh.privateKey, NEXUS_SSH_KEY or SSH_AUTH_SOCK";
}
