/**
 * WebSocket clients for test/e2e/websockets.test.ts (undici's WebSocket: Node 20 has no global
 * one before 22). Each behaves as docs/apps.md asks of an app's clients: on a close (1001 "going
 * away" from the app, or the balancer shutting the session) it reconnects, through the balancer,
 * and sends again the message it had not seen acknowledged. Messages are numbered, one in flight
 * at a time, and the fixture (fixtures/app-ws) acknowledges each: `msg N` → `ack N <server>`.
 */
import { WebSocket } from "undici";

export class WsClient {
  /** The server of each connection, in order (its `hello`). */
  readonly servers: string[] = [];
  /** The close code of each connection that ended while the client ran. */
  readonly closes: number[] = [];
  /** Every ack that came, in order: a message acknowledged twice shows twice (its first ack was lost). */
  readonly acks: number[] = [];
  private next = 1;
  private socket: WebSocket | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly everyMs: number,
  ) {}

  start(): void {
    const ws = new WebSocket(this.url);
    this.socket = ws;
    ws.onmessage = (event) => {
      const [word, a, b] = String(event.data).split(" ");
      if (word === "hello" && a) {
        this.servers.push(a);
        this.send(ws);
      } else if (word === "ack" && b) {
        this.acks.push(Number(a));
        if (Number(a) !== this.next) return;
        this.next++;
        this.timer = setTimeout(() => this.send(ws), this.everyMs);
      }
    };
    ws.onclose = (event) => {
      clearTimeout(this.timer);
      if (this.stopped) return;
      this.closes.push(event.code);
      // A refused upgrade (no server reachable for a moment) closes too: try again shortly.
      this.timer = setTimeout(() => this.start(), 50);
    };
  }

  /** The message not yet acknowledged: sent (again, after a reconnection) until its ack comes. */
  private send(ws: WebSocket): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(`msg ${this.next}`);
  }

  /** How many messages were acknowledged (1 to this, each at least once). */
  get delivered(): number {
    return this.next - 1;
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN && this.servers.length > 0;
  }

  /** Reconnections: connections after the first that reached a server. */
  get reconnections(): number {
    return Math.max(0, this.servers.length - 1);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "done");
  }
}

/** `count` clients connected (each has its `hello`) to the balancer at `httpUrl`. */
export async function connectClients(httpUrl: string, count: number, everyMs = 200): Promise<WsClient[]> {
  const url = `${httpUrl.replace(/^http/, "ws").replace(/\/$/, "")}/ws`;
  const clients = Array.from({ length: count }, () => new WsClient(url, everyMs));
  for (const client of clients) client.start();
  await until(`${count} WebSocket clients connected`, () => clients.every((c) => c.connected), 15_000);
  return clients;
}

export async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms / 1000}s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
