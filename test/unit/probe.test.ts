import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import type { ClientChannel } from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { fetchHealth } from "../../src/check/health.js";
import { probeOnce } from "../../src/health/probe.js";
import { ProbeAgent, ProbeAgents } from "../../src/health/probe-agent.js";
import { ForwardedSocket, forwardOpenError } from "../../src/ssh/forwarded-socket.js";

// The probe's HTTP client against a stand-in app on loopback.
let server: Server | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function app(handler: Parameters<typeof createServer>[1], port = 0): Promise<number> {
  server = createServer(handler);
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

function agentFor(port: number, open?: () => Promise<Duplex>): ProbeAgent {
  const agent = new ProbeAgent({ host: "127.0.0.1", port, open });
  closers.push(() => agent.destroy());
  return agent;
}

/**
 * What an ssh2 forwarded channel does, over a TCP connection: 'end' when the far end closes its
 * side (and the channel stays open until told), 'close' when it is gone, `close()` to close it.
 */
class FakeChannel extends Duplex {
  closes = 0;
  constructor(private readonly tcp: Socket) {
    super({ allowHalfOpen: true });
    tcp.on("data", (chunk: Buffer) => this.push(chunk));
    tcp.on("end", () => this.push(null));
    tcp.on("close", () => this.emit("close"));
  }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.tcp.write(chunk, callback);
  }
  override _final(callback: () => void): void {
    this.tcp.end();
    callback();
  }
  close(): void {
    this.closes++;
    this.tcp.destroy();
  }
}

/** Connections "forwarded" through FakeChannels, as SshSession.forwardSocket opens them. */
function forwarded(port: number) {
  const channels: FakeChannel[] = [];
  const sockets: ForwardedSocket[] = [];
  const open = async () => {
    // Half-open, as sshd keeps a channel whose app closed its side until this end closes too.
    const tcp = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    await once(tcp, "connect");
    const channel = new FakeChannel(tcp);
    channels.push(channel);
    const socket = new ForwardedSocket(channel as unknown as ClientChannel);
    sockets.push(socket);
    return socket;
  };
  return { channels, sockets, open };
}

describe("probeOnce", () => {
  it("passes on a 2xx, reads the release, and keeps one connection for the probes that follow", async () => {
    const sockets = new Set<unknown>();
    const port = await app((request, response) => {
      sockets.add(request.socket);
      expect(request.headers.connection).toBe("keep-alive");
      expect(request.headers["user-agent"]).toBe("nexus-health");
      expect(request.url).toBe("/health?deep=1");
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ ok: true, release: "r1" }));
    });
    const agent = agentFor(port);
    const target = { agent, path: "/health?deep=1", timeoutMs: 2000 };
    const first = await probeOnce(target, Date.now());
    const second = await probeOnce(
      { ...target, expectRelease: { release: "r2", required: false } },
      Date.now(),
    );
    const third = await probeOnce(target, Date.now());
    expect(first).toMatchObject({ ok: true, status: 200, release: "r1" });
    expect(second).toMatchObject({ ok: false, status: 200, release: "r1" });
    expect(second.error).toContain("r2");
    expect(third.ok).toBe(true);
    expect(sockets.size).toBe(1);
    expect(agent.opened).toBe(1);
  });

  it("fails on a non-2xx status, with the body's first line", async () => {
    const port = await app((_request, response) => {
      response.statusCode = 503;
      response.end("starting\nmore");
    });
    expect(
      await probeOnce({ agent: agentFor(port), path: "/health", timeoutMs: 2000 }, Date.now()),
    ).toMatchObject({
      ok: false,
      status: 503,
      error: "HTTP 503: starting",
    });
  });

  it("fails with the socket error when nothing listens", async () => {
    const port = await app(() => {});
    server?.close();
    await once(server as Server, "close");
    server = undefined;
    const result = await probeOnce({ agent: agentFor(port), path: "/health", timeoutMs: 2000 }, Date.now());
    expect(result.ok).toBe(false);
    expect(result.error).toBe("ECONNREFUSED: connection refused (nothing listening)");
  });

  it("times out when the headers do not come, and when the body stalls; the next probe opens a new connection", async () => {
    const noHeaders = await app(() => {});
    const begin = Date.now();
    const agent = agentFor(noHeaders);
    const first = await probeOnce({ agent, path: "/health", timeoutMs: 200 }, Date.now());
    expect(first).toMatchObject({ ok: false, error: "ETIMEDOUT: response headers timed out after 200 ms" });
    expect(Date.now() - begin).toBeLessThan(1500);
    await probeOnce({ agent, path: "/health", timeoutMs: 100 }, Date.now());
    expect(agent.opened).toBe(2);
    server?.closeAllConnections();
    server?.close();
    const stalled = await app((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"release":');
    });
    const second = await probeOnce({ agent: agentFor(stalled), path: "/health", timeoutMs: 200 }, Date.now());
    expect(second).toMatchObject({ ok: false, error: "ETIMEDOUT: response body timed out after 200 ms" });
  });

  it("times out while the connection does not open", async () => {
    const agent = agentFor(1, () => new Promise<Duplex>(() => {}));
    const result = await probeOnce({ agent, path: "/health", timeoutMs: 100 }, Date.now());
    expect(result).toMatchObject({ ok: false, error: "ETIMEDOUT: connect timed out after 100 ms" });
  });

  it("fails when the app closes the connection before the end of the body", async () => {
    const port = await app((_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("partial");
      setTimeout(() => response.socket?.destroy(), 20);
    });
    const result = await probeOnce({ agent: agentFor(port), path: "/health", timeoutMs: 2000 }, Date.now());
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ECONNRESET: /);
  });

  it("a process that stops closes the kept connection: the next probe reaches the process now listening, never the old one", async () => {
    const port = await app((_request, response) => response.end(JSON.stringify({ release: "old" })));
    const agent = agentFor(port);
    const target = { agent, path: "/health", timeoutMs: 2000 };
    expect(await probeOnce(target, Date.now())).toMatchObject({ ok: true, release: "old" });
    // The old process goes (its connections with it), the new one listens on the same port.
    server?.closeAllConnections();
    server?.close();
    await once(server as Server, "close");
    expect((await probeOnce(target, Date.now())).error).toBe(
      "ECONNREFUSED: connection refused (nothing listening)",
    );
    await app((_request, response) => response.end(JSON.stringify({ release: "new" })), port);
    expect(await probeOnce(target, Date.now())).toMatchObject({ ok: true, release: "new" });
    expect(agent.opened).toBe(3);
  });

  it("a request that goes out on a kept connection the app is closing is sent again on a new one; a reset of a new connection is a failure", async () => {
    // The app answers a connection's first request and drops it at the second, unanswered: what a
    // probe sees when the app's keep-alive timeout closes the connection as the request goes out.
    const connections: Socket[] = [];
    const tcp = createTcpServer((socket) => {
      connections.push(socket);
      let requests = 0;
      socket.on("data", () => {
        requests++;
        if (requests === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        else socket.resetAndDestroy();
      });
    });
    tcp.listen(0, "127.0.0.1");
    await once(tcp, "listening");
    closers.push(() => tcp.close());
    const port = (tcp.address() as AddressInfo).port;
    const agent = agentFor(port);
    const target = { agent, path: "/health", timeoutMs: 2000 };
    expect((await probeOnce(target, Date.now())).ok).toBe(true);
    expect((await probeOnce(target, Date.now())).ok).toBe(true);
    expect(agent.opened).toBe(2);
    expect(connections).toHaveLength(2);

    // A new connection reset by the app: no retry, the probe fails.
    const resetting = createTcpServer((socket) => socket.on("data", () => socket.resetAndDestroy()));
    resetting.listen(0, "127.0.0.1");
    await once(resetting, "listening");
    closers.push(() => resetting.close());
    const fresh = agentFor((resetting.address() as AddressInfo).port);
    const result = await probeOnce({ agent: fresh, path: "/health", timeoutMs: 2000 }, Date.now());
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ECONNRESET: /);
    expect(fresh.opened).toBe(1);
  });

  it("through forwarded channels: one kept channel, a new one once the app closed it, each closed when done", async () => {
    const port = await app((_request, response) => response.end(JSON.stringify({ release: "r1" })));
    const { channels, sockets, open } = forwarded(port);
    const agent = agentFor(port, open);
    const target = { agent, path: "/health", timeoutMs: 2000 };
    for (let i = 0; i < 3; i++) expect((await probeOnce(target, Date.now())).ok).toBe(true);
    expect(channels).toHaveLength(1);
    // The app closes its side (it stops): the channel only ends, and the socket must not stay pooled.
    server?.closeAllConnections();
    await once(sockets[0] as ForwardedSocket, "close");
    expect((await probeOnce(target, Date.now())).ok).toBe(true);
    expect(channels).toHaveLength(2);
    agent.destroy();
    expect(channels[1]?.closes).toBe(1);
  });

  it("spreads probes over one kept connection per lane, in turn", async () => {
    const sockets: unknown[] = [];
    const port = await app((request, response) => {
      sockets.push(request.socket);
      response.end("ok");
    });
    const agents = new ProbeAgents({ host: "127.0.0.1", port }, 2);
    closers.push(() => agents.destroy());
    for (let i = 0; i < 4; i++)
      expect((await probeOnce({ agent: agents.next(), path: "/", timeoutMs: 2000 }, Date.now())).ok).toBe(
        true,
      );
    expect(agents.opened).toBe(2);
    expect(sockets[0]).toBe(sockets[2]);
    expect(sockets[1]).toBe(sockets[3]);
    expect(sockets[0]).not.toBe(sockets[1]);
  });
});

describe("forwardOpenError", () => {
  const failure = (description: string, reason: number) =>
    Object.assign(new Error(`(SSH) Channel open failure: ${description}`), { reason });

  it("a connect the server could not make reads as it would on a direct connection", () => {
    expect(forwardOpenError(failure("Connection refused", 2), "10.0.0.5", 3000)).toMatchObject({
      code: "ECONNREFUSED",
      message: "connection refused by 10.0.0.5:3000",
    });
    expect(forwardOpenError(failure("Connection timed out", 2), "10.0.0.5", 3000).code).toBe("ETIMEDOUT");
    expect(forwardOpenError(failure("No route to host", 2), "10.0.0.5", 3000)).toMatchObject({
      code: "EFORWARD",
      message: "the server could not connect to 10.0.0.5:3000: No route to host",
    });
  });

  it("a server that does not forward says how to fix it", () => {
    expect(forwardOpenError(failure("administratively prohibited", 1), "h", 1).message).toMatch(
      /AllowTcpForwarding.*health\.via to "direct"/,
    );
  });
});

describe("fetchHealth", () => {
  it("reports the status, whether the body is JSON and the release", async () => {
    const port = await app((request, response) => {
      expect(request.headers["user-agent"]).toBe("nexus-check");
      response.end(JSON.stringify({ release: "r9" }));
    });
    expect(await fetchHealth(agentFor(port), "/health", 2000)).toEqual({
      status: 200,
      json: true,
      release: "r9",
    });
  });

  it("reports the error code when the app does not answer", async () => {
    const port = await app(() => {});
    expect(await fetchHealth(agentFor(port), "/health", 150)).toEqual({ json: false, error: "ETIMEDOUT" });
  });
});
