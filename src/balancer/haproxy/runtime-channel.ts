import type { ExecResult, InteractiveRunner, RunningCommand } from "../../ssh/session.js";
import { BalancerError } from "../balancer-error.js";
import { channelScript, NO_SOCKET } from "./runtime-api.js";

/** What HAProxy's CLI prints after each reply in interactive mode (`prompt`). */
const PROMPT = "\n> ";
/** A reply slower than this ends the connection: HAProxy answers these commands in microseconds. */
const ANSWER_TIMEOUT_MS = 10_000;
/**
 * An idle connection is closed after this long, before HAProxy's own CLI timeout (`stats timeout`,
 * 10 s by default) would, and so that a local socat never outlives the command that needed it.
 */
const IDLE_MS = 4_000;

/** The connection ended before it answered: the command is sent again on a new one. */
class ConnectionEnded extends Error {
  constructor(
    readonly result: ExecResult | undefined,
    cause?: Error,
  ) {
    super(cause?.message ?? (result?.stderr.trim() || `exit ${result?.code ?? "?"}`));
  }
}

interface Connection {
  running: RunningCommand;
  buffer: string;
  waiting?: { resolve(text: string): void; reject(error: Error): void };
  ended?: ConnectionEnded;
}

/**
 * HAProxy's runtime API over one connection to its admin socket, kept open in interactive mode:
 * a command costs a message each way on an SSH channel that is already open (~0.5 ms on a LAN)
 * instead of a remote command and a socat start per command (~15 ms). Commands run one at a time,
 * in order. Every command nexus sends is idempotent (a state to set, a table to read), so one
 * sent as the connection ended (HAProxy's CLI timeout) is sent again on a new connection.
 */
export class RuntimeChannel {
  private connection: Connection | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly runner: InteractiveRunner,
    private readonly socket: string,
  ) {}

  /** HAProxy's reply to `command`, without the prompt and the blank line that ends it. */
  call(command: string): Promise<string> {
    const reply = this.queue.then(() => this.send(command));
    this.queue = reply.catch(() => {});
    return reply;
  }

  /** Ends the connection (its client on the balancer host sees EOF and exits). */
  close(): void {
    clearTimeout(this.idle);
    this.connection?.running.end();
    this.connection = undefined;
  }

  private async send(command: string): Promise<string> {
    clearTimeout(this.idle);
    try {
      return await this.attempt(command);
    } catch (error) {
      if (!(error instanceof ConnectionEnded) || error.result?.code === NO_SOCKET) throw this.failure(error);
      try {
        return await this.attempt(command);
      } catch (again) {
        throw this.failure(again);
      }
    } finally {
      this.idle = setTimeout(() => this.close(), IDLE_MS);
      this.idle.unref();
    }
  }

  private async attempt(command: string): Promise<string> {
    if (!this.connection || this.connection.ended) await this.open();
    return this.exchange(this.connection as Connection, `${command}\n`);
  }

  /** Connects and turns the prompt on (HAProxy answers `prompt` with the prompt alone). */
  private async open(): Promise<void> {
    const connection: Connection = { running: undefined as unknown as RunningCommand, buffer: "" };
    connection.running = this.runner.start(channelScript(this.socket), (text) =>
      this.received(connection, text),
    );
    const ended = (result: ExecResult | undefined, cause?: Error) => {
      connection.ended = new ConnectionEnded(result, cause);
      connection.waiting?.reject(connection.ended);
      connection.waiting = undefined;
      if (this.connection === connection) this.connection = undefined;
    };
    connection.running.result.then(
      (result) => ended(result),
      (error: Error) => ended(undefined, error),
    );
    this.connection = connection;
    await this.exchange(connection, "prompt\n");
  }

  private exchange(connection: Connection, line: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (connection.ended) return reject(connection.ended);
      const timer = setTimeout(() => {
        connection.waiting = undefined;
        connection.running.end();
        if (this.connection === connection) this.connection = undefined;
        reject(
          new BalancerError(
            `${this.runner.name}: the HAProxy admin socket ${this.socket} did not answer "${line.trim()}" within ${ANSWER_TIMEOUT_MS / 1000}s`,
          ),
        );
      }, ANSWER_TIMEOUT_MS);
      const done =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      connection.waiting = { resolve: done(resolve), reject: done(reject) };
      connection.running.send(line);
    });
  }

  private received(connection: Connection, text: string): void {
    connection.buffer += text;
    if (!connection.buffer.endsWith(PROMPT)) return;
    const reply = connection.buffer.slice(0, -PROMPT.length).trim();
    connection.buffer = "";
    const waiting = connection.waiting;
    connection.waiting = undefined;
    waiting?.resolve(reply);
  }

  private failure(error: unknown): Error {
    if (!(error instanceof ConnectionEnded)) return error as Error;
    if (error.result?.code === NO_SOCKET) return new BalancerError(`${this.runner.name}: ${error.message}`);
    return new BalancerError(
      `${this.runner.name}: the HAProxy admin socket ${this.socket} did not answer: ${error.message}`,
    );
  }
}
