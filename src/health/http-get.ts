import http from "node:http";

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One GET on a fresh connection (no agent, `connection: close`): a pooled socket to a process that
 * was just restarted fails, and we want to know about the new process, not an old socket. Each stage
 * (connecting, waiting for the headers, each read of the body) may last `timeoutMs`. Rejects with an
 * Error that has a `code` (ECONNREFUSED, ECONNRESET, ETIMEDOUT...).
 *
 * node:http, not undici: Node parses HTTP with its built-in native llhttp, whereas undici compiles
 * its WebAssembly llhttp on the first request, +20–35 MB of RSS at the moment a deploy's memory
 * peaks (docs/benchmarks-transfer.md). A probe needs nothing else of an HTTP client.
 */
export function httpGet(
  origin: string,
  path: string,
  timeoutMs: number,
  userAgent: string,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let stage = "connect";
    const request = http.request(origin, {
      path,
      method: "GET",
      agent: false,
      headers: { connection: "close", "user-agent": userAgent },
      // Socket inactivity, from before the connection is made to the end of the body.
      timeout: timeoutMs,
    });
    request.on("timeout", () => {
      request.destroy(
        Object.assign(new Error(`${stage} timed out after ${timeoutMs} ms`), { code: "ETIMEDOUT" }),
      );
    });
    request.on("socket", (socket) => {
      socket.once("connect", () => {
        stage = "response headers";
      });
    });
    request.on("error", reject);
    request.on("response", (response) => {
      stage = "response body";
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("close", () => {
        if (!response.complete)
          reject(
            Object.assign(new Error("connection closed before the end of the body"), { code: "ECONNRESET" }),
          );
      });
      response.on("end", () => {
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        request.destroy();
      });
    });
    request.end();
  });
}
