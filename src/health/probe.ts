import { httpGet } from "./http-get.js";
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

/** One GET on a fresh connection (httpGet); never throws. */
export async function probeOnce(target: ProbeTarget, startedAt: number): Promise<ProbeResult> {
  const begin = performance.now();
  const at = Math.round(Date.now() - startedAt);
  try {
    const response = await httpGet(target.origin, target.path, target.timeoutMs, "nexus-health");
    const latencyMs = Math.round(performance.now() - begin);
    const release = releaseOf(response.body);
    if (response.status < 200 || response.status >= 300) {
      return {
        at,
        ok: false,
        status: response.status,
        latencyMs,
        release,
        error: `HTTP ${response.status}`,
      };
    }
    const problem = releaseProblem(target.expectRelease, release);
    if (problem) return { at, ok: false, status: response.status, latencyMs, release, error: problem };
    return { at, ok: true, status: response.status, latencyMs, release };
  } catch (error) {
    const latencyMs = Math.round(performance.now() - begin);
    const err = error as Error & { code?: string };
    return { at, ok: false, latencyMs, error: err.code ? `${err.code}: ${err.message}` : err.message };
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
