import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { fetchHealth } from "../../src/check/health.js";
import { probeOnce } from "../../src/health/probe.js";

// The probe's HTTP client against a stand-in app on loopback.
let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function app(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("probeOnce", () => {
  it("passes on a 2xx, reads the release, and uses a fresh connection each time", async () => {
    const sockets = new Set<unknown>();
    const origin = await app((request, response) => {
      sockets.add(request.socket);
      expect(request.headers.connection).toBe("close");
      expect(request.headers["user-agent"]).toBe("nexus-health");
      expect(request.url).toBe("/health?deep=1");
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ ok: true, release: "r1" }));
    });
    const target = { origin, path: "/health?deep=1", timeoutMs: 2000 };
    const first = await probeOnce(target, Date.now());
    const second = await probeOnce(
      { ...target, expectRelease: { release: "r2", required: false } },
      Date.now(),
    );
    expect(first).toMatchObject({ ok: true, status: 200, release: "r1" });
    expect(second).toMatchObject({ ok: false, status: 200, release: "r1" });
    expect(second.error).toContain("r2");
    expect(sockets.size).toBe(2);
  });

  it("fails on a non-2xx status, with the body's first line", async () => {
    const origin = await app((_request, response) => {
      response.statusCode = 503;
      response.end("starting");
    });
    expect(await probeOnce({ origin, path: "/health", timeoutMs: 2000 }, Date.now())).toMatchObject({
      ok: false,
      status: 503,
      error: "HTTP 503: starting",
    });
  });

  it("fails with the socket error when nothing listens", async () => {
    const origin = await app(() => {});
    server?.close();
    await once(server as Server, "close");
    server = undefined;
    const result = await probeOnce({ origin, path: "/health", timeoutMs: 2000 }, Date.now());
    expect(result.ok).toBe(false);
    expect(result.error).toBe("ECONNREFUSED: connection refused (nothing listening)");
  });

  it("times out when the headers do not come, and when the body stalls", async () => {
    const noHeaders = await app(() => {});
    const begin = Date.now();
    const first = await probeOnce({ origin: noHeaders, path: "/health", timeoutMs: 200 }, Date.now());
    expect(first).toMatchObject({ ok: false, error: "ETIMEDOUT: response headers timed out after 200 ms" });
    expect(Date.now() - begin).toBeLessThan(1500);
    server?.closeAllConnections();
    server?.close();
    const stalled = await app((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"release":');
    });
    const second = await probeOnce({ origin: stalled, path: "/health", timeoutMs: 200 }, Date.now());
    expect(second).toMatchObject({ ok: false, error: "ETIMEDOUT: response body timed out after 200 ms" });
  });

  it("fails when the app closes the connection before the end of the body", async () => {
    const origin = await app((_request, response) => {
      response.writeHead(200, { "content-length": "100" });
      response.write("partial");
      setTimeout(() => response.socket?.destroy(), 20);
    });
    const result = await probeOnce({ origin, path: "/health", timeoutMs: 2000 }, Date.now());
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ECONNRESET: /);
  });
});

describe("fetchHealth", () => {
  it("reports the status, whether the body is JSON and the release", async () => {
    const origin = await app((request, response) => {
      expect(request.headers["user-agent"]).toBe("nexus-check");
      response.end(JSON.stringify({ release: "r9" }));
    });
    expect(await fetchHealth(origin, "/health", 2000)).toEqual({ status: 200, json: true, release: "r9" });
  });

  it("reports the error code when the app does not answer", async () => {
    const origin = await app(() => {});
    expect(await fetchHealth(origin, "/health", 150)).toEqual({ json: false, error: "ETIMEDOUT" });
  });
});
