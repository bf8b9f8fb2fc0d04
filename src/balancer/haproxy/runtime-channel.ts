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
/** Sent after every batch: which process answered, and whether it is on its way out. */
const SHOW_INFO = "show info";

/** The connection ended (or its process was stopping) before it answered: sent again on a new one. */
class ConnectionEnded extends Error {
  constructor(
    readonly result?: ExecResult,
    cause?: Error,
  ) {
    super(
      cause?.message ??
        (result?.stderr.trim() ||
          (result?.code === 0
            ? "HAProxy closed the connection before answering"
            : `its client exited ${result?.code ?? "?"}`)),
    );
  }
}

interface Waiting {
  expected: number;
  replies: string[];
  resolve(replies: string[]): void;
  reject(error: Error): void;
}

interface Connection {
  running: RunningCommand;
  buffer: string;
  waiting?: Waiting;
  ended?: ConnectionEnded;
}

/**
 * HAProxy's runtime API over one connection to its admin socket, kept open in interactive mode:
 * a batch of commands costs one message each way on an SSH channel that is already open (~0.5 ms
 * on loopback) instead of a remote command and a socat start per command (~15 ms). Batches run
 * one at a time, in order; the commands of a batch are sent together and HAProxy runs them in
 * order. Every command nexus sends is idempotent (a state to set, a table to read), so a batch
 * whose connection ended unanswered is sent again on a new connection, and so is one answered by
 * a process that is stopping: after a reload the old process keeps its CLI connections (and lives
 * as long as they do) while the new one takes the traffic, so nexus must talk to the new one. The
 * old one still finishes the requests it had: its connection is kept for `callStopping` (a drain
 * waits for those too) until `releaseStopping`.
 */
export class RuntimeChannel {
  private connection: Connection | undefined;
  /** Connections to processes that said they are stopping (after a reload), still open. */
  private stopping: Connection[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly runner: InteractiveRunner,
    private readonly socket: string,
  ) {}

  /** HAProxy's reply to `command`, without the prompt and the blank line that ends it. */
  async call(command: string): Promise<string> {
    return (await this.callAll([command]))[0] as string;
  }

  /** The replies to `commands`, sent together and run in order. */
  callAll(commands: readonly string[]): Promise<string[]> {
    const replies = this.queue.then(() => this.send(commands));
    this.queue = replies.catch(() => {});
    return replies;
  }

  /**
   * The replies of every stopping process still reached to `commands` (none when there was no
   * reload): what they still serve. A connection that ended or did not answer is let go, and
   * counts as nothing left.
   */
  callStopping(commands: readonly string[]): Promise<string[][]> {
    const replies = this.queue.then(async () => {
      const connections = this.stopping.splice(0);
      const answers = await Promise.all(
        connections.map((connection) => this.exchange(connection, commands).catch(() => undefined)),
      );
      connections.forEach((connection, i) => {
        if (answers[i] && !connection.ended) this.stopping.push(connection);
        else connection.running.end();
      });
      return answers.filter((answer): answer is string[] => answer !== undefined);
    });
    this.queue = replies.catch(() => {});
    return replies;
  }

  /** Ends the connections to stopping processes, so that they can exit. */
  releaseStopping(): void {
    for (const connection of this.stopping.splice(0)) connection.running.end();
  }

  /** Ends the connections (their client on the balancer host sees EOF and exits). */
  close(): void {
    clearTimeout(this.idle);
    this.connection?.running.end();
    this.connection = undefined;
    this.releaseStopping();
  }

  private async send(commands: readonly string[]): Promise<string[]> {
    clearTimeout(this.idle);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.attempt(commands);
        } catch (error) {
          const retry = error instanceof ConnectionEnded && error.result?.code !== NO_SOCKET && attempt < 3;
          if (!retry) throw this.failure(error, commands);
        }
      }
    } finally {
      this.idle = setTimeout(() => this.close(), IDLE_MS);
      this.idle.unref();
    }
  }

  private async attempt(commands: readonly string[]): Promise<string[]> {
    const connection = this.connection && !this.connection.ended ? this.connection : await this.open();
    const replies = await this.exchange(connection, [...commands, SHOW_INFO]);
    const info = replies.pop() ?? "";
    if (/^Stopping:\s*1\s*$/m.test(info)) {
      if (this.connection === connection) this.connection = undefined;
      this.stopping.push(connection);
      throw new ConnectionEnded(undefined, new Error("it reached an HAProxy process that is stopping"));
    }
    return replies;
  }

  /** Connects and turns the prompt on (HAProxy answers `prompt` with the prompt alone). */
  private async open(): Promise<Connection> {
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
    await this.exchange(connection, ["prompt"]);
    return connection;
  }

  private drop(connection: Connection): void {
    connection.running.end();
    if (this.connection === connection) this.connection = undefined;
  }

  private exchange(connection: Connection, lines: readonly string[]): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      if (connection.ended) return reject(connection.ended);
      const timer = setTimeout(() => {
        connection.waiting = undefined;
        this.drop(connection);
        reject(
          new BalancerError(
            `${this.runner.name}: the HAProxy admin socket ${this.socket} did not answer "${lines.join("; ")}" within ${ANSWER_TIMEOUT_MS / 1000}s`,
          ),
        );
      }, ANSWER_TIMEOUT_MS);
      const settled =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      connection.waiting = {
        expected: lines.length,
        replies: [],
        resolve: settled(resolve),
        reject: settled(reject),
      };
      connection.running.send(`${lines.join("\n")}\n`);
    });
  }

  /** Each reply ends with the prompt; none of the replies nexus reads contains "\n> ". */
  private received(connection: Connection, text: string): void {
    connection.buffer += text;
    for (let end = connection.buffer.indexOf(PROMPT); end >= 0; end = connection.buffer.indexOf(PROMPT)) {
      const reply = connection.buffer.slice(0, end).trim();
      connection.buffer = connection.buffer.slice(end + PROMPT.length);
      const waiting = connection.waiting;
      if (!waiting) continue;
      waiting.replies.push(reply);
      if (waiting.replies.length < waiting.expected) continue;
      connection.waiting = undefined;
      waiting.resolve(waiting.replies);
    }
  }

  private failure(error: unknown, commands: readonly string[]): Error {
    if (!(error instanceof ConnectionEnded)) return error as Error;
    if (error.result?.code === NO_SOCKET) return new BalancerError(`${this.runner.name}: ${error.message}`);
    return new BalancerError(
      `${this.runner.name}: "${commands.join("; ")}" through the HAProxy admin socket ${this.socket}: ${error.message}`,
    );
  }
}
