import type { Counts } from "../../watch/traffic.js";
import { showStatServerRows, statNumber } from "./stats.js";

/** The per-server counters of HAProxy's `show stat` that the watch reads (all cumulative). */
export interface ServerCounters {
  /** Responses by class, summed: hrsp_1xx .. hrsp_5xx and hrsp_other. */
  responses: number;
  hrsp5xx: number;
  /** Response errors: the server aborted or sent garbage. */
  eresp: number;
  /** Requests that could not connect to the server. */
  econ: number;
  /** Connection attempts retried (each one a failed try against this server). */
  wretr: number;
}

const RESPONSE_FIELDS = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"];

/**
 * The counters of each server row of `backend` (every backend when omitted, keyed
 * "backend/server" then) in a `show stat` CSV reply.
 */
export function parseShowStat(csv: string, backend?: string): Map<string, ServerCounters> {
  const out = new Map<string, ServerCounters>();
  for (const row of showStatServerRows(csv)) {
    if (backend !== undefined && row.pxname !== backend) continue;
    out.set(backend === undefined ? `${row.pxname}/${row.svname}` : (row.svname as string), {
      responses: RESPONSE_FIELDS.reduce((sum, field) => sum + statNumber(row, field), 0),
      hrsp5xx: statNumber(row, "hrsp_5xx"),
      eresp: statNumber(row, "eresp"),
      econ: statNumber(row, "econ"),
      wretr: statNumber(row, "wretr"),
    });
  }
  return out;
}

/**
 * Requests and failures per server between two `show stat` snapshots. A failure is a 5xx answer,
 * a response error, a connection error or a retried connection; each of those that got no
 * response is also counted as a request. A counter that went down (HAProxy restarted, counters
 * cleared) is taken from zero.
 */
export function statDeltas(
  before: ReadonlyMap<string, ServerCounters>,
  after: ReadonlyMap<string, ServerCounters>,
): Map<string, Counts> {
  const out = new Map<string, Counts>();
  for (const [server, now] of after) {
    const seen = before.get(server);
    // One counter that went down means all of them started again (a reload): a mix of deltas and
    // fresh totals could count more failures than requests.
    const reset =
      seen !== undefined && (Object.keys(now) as (keyof ServerCounters)[]).some((f) => now[f] < seen[f]);
    const then = reset ? undefined : seen;
    const delta = (field: keyof ServerCounters) => now[field] - (then?.[field] ?? 0);
    const noResponse = delta("eresp") + delta("econ") + delta("wretr");
    const requests = delta("responses") + noResponse;
    out.set(server, { requests, failures: Math.min(requests, delta("hrsp5xx") + noResponse) });
  }
  return out;
}
