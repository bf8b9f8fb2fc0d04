import { Duplex } from "node:stream";
import type { ClientChannel } from "ssh2";

/** ssh2's reasons for a channel that did not open (RFC 4254, 5.1). */
const OPEN_PROHIBITED = 1;
const OPEN_CONNECT_FAILED = 2;

/**
 * A forwarded connection (an ssh2 `forwardOut` channel) as the socket node:http expects: its
 * own `destroy` that takes effect at once (ssh2's channel only asks the server to close, and stays
 * "not destroyed" a round trip longer, which an http.Agent would take for a live connection), an
 * end of the app's side that ends this one (a channel is half-open until told otherwise), and the
 * socket methods http.Agent calls (no-ops: there is no TCP socket on this end).
 */
export class ForwardedSocket extends Duplex {
  constructor(private readonly channel: ClientChannel) {
    super({ allowHalfOpen: false });
    channel.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) channel.pause();
    });
    channel.once("end", () => this.push(null));
    channel.once("close", () => this.destroy());
    channel.on("error", (error: Error) => this.destroy(error));
  }

  override _read(): void {
    this.channel.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A probe's request is a few hundred bytes: the channel's window always holds it.
    this.channel.write(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.channel.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.channel.close();
    callback(error);
  }

  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/**
 * Why the server could not open a forwarded connection, as the error a TCP connect from there
 * would have given: sshd answers a refused connect with "Connection refused" (reason 2), so a probe
 * tells "nothing listening" from a connection the app reset, as it would on a direct connection.
 */
export function forwardOpenError(
  error: Error & { reason?: number | string },
  host: string,
  port: number,
): Error & { code: string } {
  const description = error.message.replace(/^\(SSH\) Channel open failure: /, "").trim();
  const to = `${host}:${port}`;
  const made = (code: string, message: string) => Object.assign(new Error(message), { code });
  if (error.reason === OPEN_CONNECT_FAILED) {
    if (/refused/i.test(description)) return made("ECONNREFUSED", `connection refused by ${to}`);
    if (/timed out/i.test(description)) return made("ETIMEDOUT", `connecting to ${to} timed out`);
    return made("EFORWARD", `the server could not connect to ${to}: ${description || "connect failed"}`);
  }
  if (error.reason === OPEN_PROHIBITED)
    return made(
      "EFORWARD",
      `the server's sshd does not forward connections for this user (AllowTcpForwarding, PermitOpen): allow it, or set health.via to "direct"${description ? ` (${description})` : ""}`,
    );
  return made("EFORWARD", `no forwarded connection to ${to}: ${description || error.message}`);
}
