import { httpGet } from "./http-get.js";
import type { ProbeAgent } from "./probe-agent.js";
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
  /** The app's port, through its kept connection (probe-agent.ts). */
  agent: ProbeAgent;
  path: string;
  timeoutMs: number;
  /** What /health's `release` must be (see health.checkRelease); undefined: not checked. */
  expectRelease?: ReleaseCheck;
}

/** One GET through the agent's kept connection (httpGet); never throws. */
export async function probeOnce(target: ProbeTarget, startedAt: number): Promise<ProbeResult> {
  const begin = performance.now();
  const at = Math.round(Date.now() - startedAt);
  try {
    const response = await httpGet(target.agent, target.path, target.timeoutMs, "nexus-health");
    const latencyMs = Math.round(performance.now() - begin);
    const release = releaseOf(response.body);
    if (response.status < 200 || response.status >= 300) {
      return {
        at,
        ok: false,
        status: response.status,
        latencyMs,
        release,
        error: `HTTP ${response.status}${firstLine(response.body)}`,
      };
    }
    const problem = releaseProblem(target.expectRelease, release);
    if (problem) return { at, ok: false, status: response.status, latencyMs, release, error: problem };
    return { at, ok: true, status: response.status, latencyMs, release };
  } catch (error) {
    const latencyMs = Math.round(performance.now() - begin);
    return { at, ok: false, latencyMs, error: describeError(error as Error & { code?: string }) };
  }
}

/** ": <the body's first line>" (at most 120 characters), or nothing: what a 5xx says about itself. */
function firstLine(body: string): string {
  const line = body.trim().split("\n")[0]?.trim() ?? "";
  if (!line) return "";
  return `: ${line.length > 120 ? `${line.slice(0, 117)}...` : line}`;
}

/** A failed probe as a gate failure ends with it: the code, then what it means. */
function describeError(err: Error & { code?: string }): string {
  // Same words direct or through SSH (where sshd said "Connection refused" for the channel).
  if (err.code === "ECONNREFUSED") return "ECONNREFUSED: connection refused (nothing listening)";
  return err.code ? `${err.code}: ${err.message}` : err.message;
}

function releaseOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { release?: unknown };
    return typeof parsed.release === "string" ? parsed.release : undefined;
  } catch {
    return undefined;
  }
}
