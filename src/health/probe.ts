import { Client } from "undici";
import { type ReleaseCheck, releaseProblem } from "./release-check.js";

export { releaseCheck } from "./release-check.js";

export interface ProbeResult {
  /** ms since the gate started */
  at: number;
  ok: boolean;
  status?: number;
  latencyMs: number;
  release?: string;
  error?: string;
}

export interface ProbeTarget {
  /** http://host:port of the app, as reachable from here (maybe a tunnel). */
  origin: string;
  path: string;
  timeoutMs: number;
  /** What /health's `release` must be (see health.checkRelease); undefined: not checked. */
  expectRelease?: ReleaseCheck;
}

/**
 * One GET on a fresh connection: a pooled socket to a process that was just restarted fails
 * with UND_ERR_SOCKET, and we want to know about the new process, not an old socket.
 */
export async function probeOnce(target: ProbeTarget, startedAt: number): Promise<ProbeResult> {
  const begin = performance.now();
  const at = Math.round(Date.now() - startedAt);
  const client = new Client(target.origin, {
    connectTimeout: target.timeoutMs,
    headersTimeout: target.timeoutMs,
    bodyTimeout: target.timeoutMs,
    pipelining: 0,
  });
  try {
    const response = await client.request({
      path: target.path,
      method: "GET",
      headers: { connection: "close", "user-agent": "nexus-health" },
    });
    const text = await response.body.text();
    const latencyMs = Math.round(performance.now() - begin);
    const release = releaseOf(text);
    if (response.statusCode < 200 || response.statusCode >= 300) {
      return {
        at,
        ok: false,
        status: response.statusCode,
        latencyMs,
        release,
        error: `HTTP ${response.statusCode}`,
      };
    }
    const problem = releaseProblem(target.expectRelease, release);
    if (problem) return { at, ok: false, status: response.statusCode, latencyMs, release, error: problem };
    return { at, ok: true, status: response.statusCode, latencyMs, release };
  } catch (error) {
    const latencyMs = Math.round(performance.now() - begin);
    const err = error as Error & { code?: string };
    return { at, ok: false, latencyMs, error: err.code ? `${err.code}: ${err.message}` : err.message };
  } finally {
    client.destroy().catch(() => {});
  }
}

function releaseOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { release?: unknown };
    return typeof parsed.release === "string" ? parsed.release : undefined;
  } catch {
    return undefined;
  }
}
