import type { Counts } from "./traffic.js";

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
 * Parses the CSV of `show stat` (header line "# pxname,svname,..."): the counters of each server
 * row of `backend` (every backend when omitted), keyed by server name. Columns are found by their
 * header name, so versions that add columns parse alike; an empty cell counts as 0.
 */
export function parseShowStat(csv: string, backend?: string): Map<string, ServerCounters> {
  const lines = csv.split(/\r?\n/).filter((line) => line.trim() !== "");
  const header = lines.find((line) => line.startsWith("#"));
  const out = new Map<string, ServerCounters>();
  if (!header) return out;
  const columns = header.replace(/^#\s*/, "").split(",");
  const at = (name: string) => columns.indexOf(name);
  const number = (cells: string[], name: string) => {
    const index = at(name);
    const value = index < 0 ? Number.NaN : Number.parseInt(cells[index] ?? "", 10);
    return Number.isFinite(value) ? value : 0;
  };
  for (const line of lines) {
    if (line.startsWith("#")) continue;
    const cells = line.split(",");
    const proxy = cells[at("pxname")] ?? "";
    const server = cells[at("svname")] ?? "";
    if (server === "FRONTEND" || server === "BACKEND" || server === "") continue;
    if (backend !== undefined && proxy !== backend) continue;
    const key = backend === undefined ? `${proxy}/${server}` : server;
    out.set(key, {
      responses: RESPONSE_FIELDS.reduce((sum, field) => sum + number(cells, field), 0),
      hrsp5xx: number(cells, "hrsp_5xx"),
      eresp: number(cells, "eresp"),
      econ: number(cells, "econ"),
      wretr: number(cells, "wretr"),
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
    const then = before.get(server);
    const delta = (field: keyof ServerCounters) => {
      const previous = then?.[field] ?? 0;
      return now[field] >= previous ? now[field] - previous : now[field];
    };
    const noResponse = delta("eresp") + delta("econ") + delta("wretr");
    out.set(server, {
      requests: delta("responses") + noResponse,
      failures: delta("hrsp5xx") + noResponse,
    });
  }
  return out;
}
