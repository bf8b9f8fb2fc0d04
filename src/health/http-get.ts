import http from "node:http";
import { connecting, type ProbeAgent } from "./probe-agent.js";

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One GET through the agent's kept connection (probe-agent.ts), opened first when there is none.
 * Each stage (connecting, waiting for the headers, each read of the body) may last `timeoutMs`.
 * Rejects with an Error that has a `code` (ECONNREFUSED, ECONNRESET, ETIMEDOUT...).
 *
 * A kept connection the app closed as the request went out on it (the app stopped, or its
 * keep-alive timeout ran out) fails before any answer: that says nothing about the app now, so
 * the request is sent once more, on a new connection, whose outcome is the answer.
 *
 * node:http, not undici: Node parses HTTP with its built-in native llhttp, whereas undici compiles
 * its WebAssembly llhttp on the first request, +20–35 MB of RSS at the moment a deploy's memory
 * peaks (docs/benchmarks-transfer.md). A probe needs nothing else of an HTTP client.
 */
export async function httpGet(
  agent: ProbeAgent,
  path: string,
  timeoutMs: number,
  userAgent: string,
): Promise<HttpAnswer> {
  try {
    return await getOnce(agent, path, timeoutMs, userAgent);
  } catch (error) {
    if (!(error as StaleConnection).stale) throw error;
    return getOnce(agent, path, timeoutMs, userAgent);
  }
}

type StaleConnection = Error & { stale?: boolean };

function getOnce(agent: ProbeAgent, path: string, timeoutMs: number, userAgent: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const { host, port } = agent.endpoint;
    let answered = false;
    const request = http.request({
      host,
      port,
      path,
      method: "GET",
      agent,
      headers: { "user-agent": userAgent },
    });
    let timer: NodeJS.Timeout | undefined;
    const stage = (name: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const error = Object.assign(new Error(`${name} timed out after ${timeoutMs} ms`), {
          code: "ETIMEDOUT",
        });
        // Before a connection is handed over, destroying the request emits nothing.
        reject(error);
        request.destroy(error);
      }, timeoutMs);
    };
    stage("connect");
    request.on("socket", (socket) => {
      if (!connecting(socket)) stage("response headers");
      else socket.once("connect", () => stage("response headers"));
    });
    request.on("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      const stale =
        request.reusedSocket && !answered && (error.code === "ECONNRESET" || error.code === "EPIPE");
      reject(stale ? Object.assign(error, { stale: true }) : error);
    });
    request.on("response", (response) => {
      answered = true;
      stage("response body");
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        stage("response body");
      });
      response.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      response.on("close", () => {
        clearTimeout(timer);
        if (!response.complete)
          reject(
            Object.assign(new Error("connection closed before the end of the body"), { code: "ECONNRESET" }),
          );
      });
      response.on("end", () => {
        clearTimeout(timer);
        // The connection goes back to the agent for the next probe.
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    request.end();
  });
}
