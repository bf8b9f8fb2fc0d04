import { httpGet } from "../health/http-get.js";
import type { ProbeAgent } from "../health/probe-agent.js";
import type { CheckItem } from "./types.js";

export interface HealthAnswer {
  status?: number;
  json: boolean;
  release?: string;
  error?: string;
}

/** One GET of the health endpoint; never throws. */
export async function fetchHealth(agent: ProbeAgent, path: string, timeoutMs: number): Promise<HealthAnswer> {
  try {
    const response = await httpGet(agent, path, timeoutMs, "nexus-check");
    let json = false;
    let release: string | undefined;
    try {
      const parsed = JSON.parse(response.body) as { release?: unknown };
      json = typeof parsed === "object" && parsed !== null;
      if (json && typeof parsed.release === "string") release = parsed.release;
    } catch {}
    return { status: response.status, json, ...(release ? { release } : {}) };
  } catch (error) {
    const err = error as Error & { code?: string };
    return { json: false, error: err.code ?? err.message };
  }
}

export function healthItem(
  target: string,
  path: string,
  checkRelease: boolean | "auto",
  answer: HealthAnswer,
): CheckItem {
  const base = { target, check: "health" };
  if (answer.status === undefined)
    return {
      ...base,
      status: "warn",
      detail: `${path} does not answer (${answer.error ?? "no answer"}): fine before the first deploy`,
      fix: "once deployed, the app must answer GET on health.path with a 2xx",
    };
  if (answer.status < 200 || answer.status >= 300)
    return {
      ...base,
      status: "fail",
      detail: `${path} answers HTTP ${answer.status}`,
      fix: "the health endpoint must answer 2xx when the app can serve",
    };
  if (answer.release)
    return {
      ...base,
      status: "ok",
      detail: `HTTP ${answer.status}, JSON, reports release ${answer.release}`,
    };
  const shape = answer.json ? "JSON without a release" : "not JSON";
  if (checkRelease === true)
    return {
      ...base,
      status: "fail",
      detail: `HTTP ${answer.status}, ${shape}, and health.checkRelease is true`,
      fix: 'answer {"release": process.env.NEXUS_RELEASE} in /health, or set health.checkRelease to "auto"',
    };
  return {
    ...base,
    status: "ok",
    detail: `HTTP ${answer.status}, ${shape}: the gate relies on the process checks (report {"release": process.env.NEXUS_RELEASE} to have it checked)`,
  };
}
