import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const ARTIFACT_NAME = "release.tar.gz";

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses "host:port" or "[v6]:port". */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`expected "host:port", got "${text}"`);
  return { host: (match[1] ?? match[2]) as string, port };
}

/** `http://host:port`, with brackets around an IPv6 address. */
export function baseUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export interface ArtifactServerOptions {
  /** The one file served. */
  file: string;
  listen: ListenAddress;
  /** Base URL the servers use, when they do not reach `listen` directly; default http://<listen>. */
  advertise?: string;
  /** The host in the default URL when `listen` is a wildcard address. */
  advertiseHost?: string;
  /** Called (synchronously) when the server stops taking offers. */
  onClose?: () => void;
}

export interface Offer {
  /** The URL to fetch, with a fresh random token in it. */
  url: string;
  /** The token alone, to mask it in messages. */
  token: string;
  /** Bytes sent on this offer so far (the last fetch, if there were retries). */
  sent(): number;
  /** Ends the offer: its URL answers 404, an unfinished response is cut; the server closes with its last offer. */
  withdraw(): void;
}

interface OfferState {
  sent: number;
  /** A download has all of the file (queued or delivered): later requests answer 410. */
  spent: boolean;
  /** A download was delivered whole: the offer stays spent whatever else happens. */
  finished: boolean;
  timer: NodeJS.Timeout;
  responses: Set<ServerResponse>;
  onProgress?: (sent: number, total: number) => void;
}

/**
 * Serves one file over HTTP to the servers that could not receive it over SFTP. Each server gets
 * its own offer: `/<32 random bytes in hex>/release.tar.gz`, valid for one complete download
 * (then 410) until withdrawn or timed out (then 404); every other path answers 404. The listener closes when its last offer ends.
 */
export class ArtifactServer {
  private readonly offers = new Map<string, OfferState>();
  private closed = false;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  private constructor(
    private readonly server: Server,
    private readonly file: string,
    private readonly size: number,
    readonly base: string,
    private readonly onClose?: () => void,
  ) {
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    server.on("request", (request, response) => this.handle(request, response));
  }

  static async start(options: ArtifactServerOptions): Promise<ArtifactServer> {
    const { size } = await stat(options.file);
    const server = createServer();
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const base = (
      options.advertise ?? baseUrl(options.advertiseHost ?? options.listen.host, address.port)
    ).replace(/\/+$/, "");
    return new ArtifactServer(server, options.file, size, base, options.onClose);
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once the listener is closed. */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  /** `base`: the URL's start for this offer, when hosts reach this listener at other addresses. */
  offer(timeoutMs: number, onProgress?: (sent: number, total: number) => void, base = this.base): Offer {
    if (this.closed) throw new Error("the artifact server is closed");
    const token = randomBytes(32).toString("hex");
    const state: OfferState = {
      sent: 0,
      spent: false,
      finished: false,
      responses: new Set(),
      onProgress,
      timer: setTimeout(() => this.withdraw(token), timeoutMs),
    };
    this.offers.set(token, state);
    return {
      url: `${base}/${token}/${ARTIFACT_NAME}`,
      token,
      sent: () => state.sent,
      withdraw: () => this.withdraw(token),
    };
  }

  close(): void {
    for (const token of [...this.offers.keys()]) this.withdraw(token, false);
    this.shutdown();
  }

  private withdraw(token: string, closeIfIdle = true): void {
    const state = this.offers.get(token);
    if (!state) return;
    this.offers.delete(token);
    clearTimeout(state.timer);
    for (const response of state.responses) response.destroy();
    if (closeIfIdle && this.offers.size === 0) this.shutdown();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
    this.server.close(() => this.resolveClosed());
    this.server.closeAllConnections();
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const match = /^\/([0-9a-f]{64})\/([^/?#]+)$/.exec(request.url ?? "");
    const state = match && match[2] === ARTIFACT_NAME ? this.offers.get(match[1] as string) : undefined;
    if (!state || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain", connection: "close" });
      response.end("not found\n");
      return;
    }
    if (state.spent) {
      response.writeHead(410, { "content-type": "text/plain", connection: "close" });
      response.end("gone: this offer was downloaded once already\n");
      return;
    }
    response.writeHead(200, {
      "content-type": "application/gzip",
      "content-length": String(this.size),
      "cache-control": "no-store",
    });
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    state.sent = 0;
    state.responses.add(response);
    const stream = createReadStream(this.file, { highWaterMark: 1024 * 1024 });
    // One complete download per offer: whoever holds the URL afterwards gets nothing. Spent as
    // soon as the last bytes are read, before they are written: so before the client can have them
    // all and ask again. Written by hand, not piped, so that the response ends with its last bytes:
    // a pipe ends it on the read stream's "end", one more read from the thread pool later, and a
    // client that has every byte (Content-Length) may close first, so "finish" never came and the
    // offer was opened again (CI saw a 200 where 410 was due). Opened again only if the response
    // fails before all of it was handed to the socket.
    stream.on("data", (chunk) => {
      state.sent += chunk.length;
      const last = state.sent >= this.size;
      if (last) state.spent = true;
      state.onProgress?.(state.sent, this.size);
      const flowing = response.write(chunk);
      if (last) {
        response.end();
        stream.destroy();
      } else if (!flowing) {
        stream.pause();
        response.once("drain", () => stream.resume());
      }
    });
    // Shorter than it was (changed since it was offered): cut, so the client sees a short body.
    stream.on("end", () => {
      if (!response.writableEnded) response.destroy();
    });
    stream.on("error", () => response.destroy());
    response.on("finish", () => {
      state.spent = true;
      state.finished = true;
    });
    response.on("close", () => {
      stream.destroy();
      state.responses.delete(response);
      if (!response.writableFinished && !state.finished) state.spent = false;
    });
  }
}
