/**
 * A small load harness for the sandbox: steady traffic through the load balancer with autocannon,
 * and a per-request ledger of what happened to every request. Also the "naive" rollout (switch and
 * restart each server under PM2 with no drain) that the zero-downtime test and `npm run bench`
 * compare nexus against.
 *
 * Only node builtins and autocannon are imported: `scripts/bench.mjs` transpiles this file as is.
 *
 * Why a ledger of our own rather than autocannon's counters: autocannon 8 skips its `response`
 * event (and so its status and latency figures) for the response that triggers a `reconnectRate`
 * reconnect, sends one more request on a socket the server announced it will close
 * (`Connection: close`, which Nginx sends from a worker that is shutting down after a reload),
 * and counts a connection closed with a request in flight as nothing at all. The ledger follows
 * each connection's own events instead: a request is written (`request`), its response headers
 * arrive (`headers`), or its connection fails (`connError`), closes, or stalls past the timeout.
 * A request lost on a reused keep-alive connection before any response byte is sent again once,
 * as browsers do, and judged by that second try (see `resend`); it is counted as `resent`.
 */
import { execFile } from "node:child_process";
import http from "node:http";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

export type ConnectionKind = "keep-alive" | "fresh";
export type FailureKind = "non2xx" | "reset" | "timeout" | "unfinished";

export interface RequestRecord {
  /** When the request was written, in ms since the epoch (sub-millisecond precision). */
  start: number;
  /** When its response headers arrived, or when it was found failed. */
  end: number;
  method: "GET" | "POST";
  connection: ConnectionKind;
  /** HTTP status, 0 when no response came. */
  status: number;
  failure?: FailureKind;
  error?: string;
  /** From the response body: the app's NEXUS_SERVER and NEXUS_RELEASE. */
  server?: string;
  release?: string;
  /** Set when the request was sent again (see `resend`): why the first attempt got no response. */
  resent?: string;
}

export interface LoadOptions {
  /** The load balancer, e.g. http://127.0.9.10:8080. Must be on loopback (127.0.0.0/8). */
  url: string;
  /** Total requests per second offered (default 160), split over keep-alive and fresh connections. */
  rate?: number;
  /** Share of the rate sent on a fresh connection per request (default 0.25). */
  freshShare?: number;
  /** Requests whose response has not begun after this many seconds count as timeouts (default 5). */
  timeoutSeconds?: number;
  /** Hard bound: the load stops by itself after this many seconds even if `stop` is never called. */
  maxSeconds: number;
}

export interface AutocannonCounters {
  errors: number;
  timeouts: number;
  non2xx: number;
}

export interface LoadResult {
  startedAt: number;
  stoppedAt: number;
  /** Offered rate in requests per second. */
  rate: number;
  records: RequestRecord[];
  /** autocannon's own counters, summed over its instances (see the caveats above). */
  autocannon: AutocannonCounters;
  /** True when `maxSeconds` ran out before `stop` was called. */
  hardStopped: boolean;
}

export interface LoadHandle {
  readonly startedAt: number;
  /** Responses (or failures) recorded so far. */
  readonly count: () => number;
  /** Stops sending, lets requests in flight finish (bounded by the timeout) and returns the ledger. */
  stop(): Promise<LoadResult>;
}

// autocannon ships no types: the small part of its API used here.
interface AcHeadersInfo {
  statusCode: number;
  shouldKeepAlive: boolean;
}
interface AcClient {
  on(event: "request", listener: () => void): void;
  on(event: "headers", listener: (info: AcHeadersInfo) => void): void;
  on(event: "body", listener: (chunk: Buffer) => void): void;
  on(event: "connError", listener: (error: NodeJS.ErrnoException) => void): void;
  on(event: "done", listener: () => void): void;
  reqsMade: number;
  responseMax?: number;
}
interface AcResult {
  errors: number;
  timeouts: number;
  non2xx: number;
}
interface AcInstance {
  stop(): void;
  on(event: "done", listener: (result: AcResult) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
}
type Autocannon = (options: Record<string, unknown>) => AcInstance;

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const now = (): number => performance.timeOrigin + performance.now();

export const ORDER_BODY = JSON.stringify({ item: 2, quantity: 1, note: "load test" });

interface LoadRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

const ORDER_POST: LoadRequest = {
  method: "POST",
  path: "/api/orders",
  headers: { "content-type": "application/json" },
  body: ORDER_BODY,
};
// Two GETs for one POST: p50 is a GET's latency, p99 a POST's (the app holds each POST 100–150 ms).
const REQUESTS: LoadRequest[] = [{ method: "GET", path: "/" }, { method: "GET", path: "/" }, ORDER_POST];

/** Throws unless `url` points at 127.0.0.0/8: no load leaves the machine. */
export function assertLoopback(url: string): URL {
  const parsed = new URL(url);
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(parsed.hostname)) {
    throw new Error(`load harness: ${url} is not on loopback (127.0.0.0/8)`);
  }
  return parsed;
}

interface Slot {
  record: RequestRecord;
  request: LoadRequest;
  /** Written on a connection the server had announced it would close: not a real request. */
  phantom: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What became of one request sent by `sendOnce`. */
interface Reply {
  /** HTTP status, 0 when no response came. */
  status: number;
  body: string;
  /** Why the response did not arrive whole: an error code or message, or TIMEOUT. */
  error?: string;
  /** Written on a pooled socket that had served an earlier request (Node's `req.reusedSocket`). */
  reused: boolean;
}

const TIMEOUT = "timeout";

/** Sends one request (on `agent`'s sockets, or a connection of its own) and waits for all of its response. */
function sendOnce(
  url: string,
  request: LoadRequest,
  agent: http.Agent | false,
  timeoutMs: number,
): Promise<Reply> {
  return new Promise((resolve) => {
    let reused = false;
    let settled = false;
    const finish = (status: number, body: string, error?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      resolve({ status, body, reused, error: error && (error.code ?? error.message) });
    };
    const req = http.request(
      new URL(request.path, url),
      { method: request.method, headers: request.headers, agent, timeout: timeoutMs },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => finish(res.statusCode ?? 0, body));
        res.on("error", (error: NodeJS.ErrnoException) => finish(res.statusCode ?? 0, body, error));
      },
    );
    req.on("socket", () => {
      reused = req.reusedSocket;
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error(TIMEOUT), { code: TIMEOUT })));
    req.on("error", (error: NodeJS.ErrnoException) => {
      reused = req.reusedSocket;
      finish(0, "", error);
    });
    req.end(request.body);
  });
}

type Outcome = Pick<RequestRecord, "end" | "status" | "failure" | "error" | "server" | "release">;

/** The app's NEXUS_SERVER and NEXUS_RELEASE, from (the start of) its response body. */
function readIdentity(record: Outcome, body: string): void {
  record.release = /"release":"([^"]*)"/.exec(body)?.[1];
  record.server = /"server":"([^"]*)"/.exec(body)?.[1];
}

/** Records a reply: when, its status, what failed if anything (`resentAfter`: it was a second try). */
function settle(record: Outcome, reply: Reply, resentAfter?: string): void {
  record.end = now();
  record.status = reply.status;
  const firstTry = resentAfter === undefined;
  if (reply.error !== undefined) {
    record.failure = reply.error === TIMEOUT ? "timeout" : "reset";
    record.error = firstTry ? reply.error : `resent after "${resentAfter}", then ${reply.error}`;
  } else if (reply.status < 200 || reply.status > 299) {
    record.failure = "non2xx";
    record.error = `HTTP ${reply.status}${firstTry ? "" : " (resent)"}`;
  }
  readIdentity(record, reply.body);
}

/**
 * Starts a steady mix of `GET /` and 100–150 ms `POST /api/orders` through the load balancer: 3/4
 * of the rate over keep-alive connections, 1/4 over a fresh connection per request. The rate is
 * split over several autocannon instances started a fraction of a second apart, since each one
 * sends its per-second quota in a burst at the top of its own second.
 */
export function startLoad(options: LoadOptions): LoadHandle {
  assertLoopback(options.url);
  const rate = options.rate ?? 160;
  const freshShare = options.freshShare ?? 0.25;
  const timeoutSeconds = options.timeoutSeconds ?? 5;
  const timeoutMs = timeoutSeconds * 1000;
  const records: RequestRecord[] = [];
  const clients: AcClient[] = [];
  const slots = new Map<AcClient, Slot | undefined>();
  const counters: AutocannonCounters = { errors: 0, timeouts: 0, non2xx: 0 };
  const startedAt = now();
  let stopping = false;
  let hardStopped = false;

  const fail = (slot: Slot, failure: FailureKind, error: string) => {
    slot.record.end = now();
    slot.record.failure = failure;
    slot.record.error = error;
    records.push(slot.record);
  };

  /**
   * What a browser does when a reused keep-alive connection closes before any response byte (an
   * Nginx worker that shuts down after a reload closes its idle client connections, and a request
   * written at that instant is never read): send the request again on a new connection. The
   * record keeps its original start, so the latency includes the detour, and is marked `resent`.
   */
  const pending = new Set<Promise<void>>();
  const resend = (record: RequestRecord, request: LoadRequest, why: string) => {
    record.resent = why;
    const done = sendOnce(options.url, request, false, timeoutMs).then((reply) => {
      settle(record, reply, why);
      records.push(record);
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };

  const setupClient = (kind: ConnectionKind) => (client: AcClient) => {
    clients.push(client);
    let sent = 0;
    let closing = false;
    /** Responses received on the current connection: more than 0 means the connection was reused. */
    let onConnection = 0;
    let last: RequestRecord | undefined;
    /** The connection under `slot` is gone with no response to it. */
    const lost = (slot: Slot, error: string) => {
      const reused = onConnection > 0;
      onConnection = 0;
      if (slot.phantom) return;
      if (now() - slot.record.start >= timeoutMs - 50)
        fail(slot, "timeout", `no response in ${timeoutSeconds}s`);
      else if (kind === "keep-alive" && reused) resend(slot.record, slot.request, error);
      else fail(slot, "reset", error);
    };
    client.on("request", () => {
      const open = slots.get(client);
      // The connection ended with this request unanswered; autocannon reconnected and goes on.
      if (open) lost(open, "connection closed before the response");
      const request = REQUESTS[sent % REQUESTS.length] as LoadRequest;
      sent++;
      const t = now();
      slots.set(client, {
        record: { start: t, end: t, method: request.method, connection: kind, status: 0 },
        request,
        phantom: closing,
      });
      closing = false;
    });
    client.on("headers", (info) => {
      const slot = slots.get(client);
      slots.set(client, undefined);
      onConnection++;
      if (!slot) return;
      const record = slot.record;
      record.end = now();
      record.status = info.statusCode;
      if (info.statusCode < 200 || info.statusCode > 299) {
        record.failure = "non2xx";
        record.error = `HTTP ${info.statusCode}`;
      }
      records.push(record);
      last = record;
      // autocannon ignores "Connection: close" and writes one more request on this socket.
      if (kind === "keep-alive" && !info.shouldKeepAlive) closing = true;
    });
    client.on("body", (chunk) => {
      if (!last || last.release !== undefined) return;
      readIdentity(last, chunk.toString("latin1"));
    });
    client.on("connError", (error) => {
      const slot = slots.get(client);
      slots.set(client, undefined);
      if (slot) lost(slot, error.code ?? error.message);
      else onConnection = 0;
    });
  };

  const keepAliveRate = Math.max(1, Math.round(rate * (1 - freshShare)));
  const freshRate = Math.max(0, rate - keepAliveRate);
  const plan: { kind: ConnectionKind; rate: number; connections: number }[] = [];
  // ~5 requests per second per connection: a keep-alive connection stays busy a third of the time.
  for (let i = 0; i < 4; i++)
    plan.push({ kind: "keep-alive", rate: keepAliveRate / 4, connections: Math.ceil(keepAliveRate / 20) });
  if (freshRate > 0) {
    for (let i = 0; i < 2; i++)
      plan.push({ kind: "fresh", rate: freshRate / 2, connections: Math.ceil(freshRate / 10) });
  }

  const instances: AcInstance[] = [];
  const finished: Promise<void>[] = [];
  const launches = plan.map(async (p, index) => {
    await sleep((index * 1000) / plan.length);
    if (stopping) return;
    const instance = autocannon({
      url: options.url,
      connections: p.connections,
      overallRate: Math.max(1, Math.round(p.rate)),
      duration: Math.max(1, options.maxSeconds - index / plan.length),
      timeout: timeoutSeconds,
      pipelining: 1,
      sampleInt: 200,
      requests: REQUESTS,
      // One request per connection: the connection is closed and a new one opened after each response.
      reconnectRate: p.kind === "fresh" ? 1 : undefined,
      setupClient: setupClient(p.kind),
    });
    instances.push(instance);
    finished.push(
      new Promise<void>((resolve) => {
        instance.on("done", (result) => {
          counters.errors += result.errors;
          counters.timeouts += result.timeouts;
          counters.non2xx += result.non2xx;
          resolve();
        });
        instance.on("error", () => resolve());
      }),
    );
  });

  const hardStop = setTimeout(() => {
    hardStopped = true;
    for (const instance of instances) instance.stop();
  }, options.maxSeconds * 1000);
  hardStop.unref();

  let result: Promise<LoadResult> | undefined;
  const stop = (): Promise<LoadResult> => {
    result ??= (async () => {
      stopping = true;
      await Promise.all(launches);
      // Each connection finishes the request it has in flight, then closes when it would send the next.
      for (const client of clients) client.responseMax = Math.max(1, client.reqsMade);
      const bound = setTimeout(() => {
        for (const instance of instances) instance.stop();
      }, timeoutMs + 2000);
      await Promise.all(finished);
      await Promise.all(pending);
      clearTimeout(bound);
      clearTimeout(hardStop);
      const stoppedAt = now();
      for (const slot of slots.values()) {
        if (!slot || slot.phantom) continue;
        if (stoppedAt - slot.record.start >= timeoutMs)
          fail(slot, "timeout", `no response in ${timeoutSeconds}s`);
        else fail(slot, "unfinished", "still in flight when the load stopped");
      }
      records.sort((a, b) => a.start - b.start);
      return { startedAt, stoppedAt, rate, records, autocannon: counters, hardStopped };
    })();
    return result;
  };

  return { startedAt, count: () => records.length, stop };
}

export interface LoadSummary {
  requests: number;
  ok: number;
  failed: number;
  byFailure: Record<FailureKind, number>;
  /** Requests sent again after a reused keep-alive connection closed before any response byte. */
  resent: number;
  /** Status codes seen (0: no response). */
  statuses: Record<string, number>;
  get: number;
  post: number;
  keepAlive: number;
  fresh: number;
  /** Responses per second over the window. */
  throughput: number;
  /** Latency to the response headers of the successful requests, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Responses per release and per server. */
  releases: Record<string, number>;
  servers: Record<string, number>;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Summarizes the requests started in [from, to) (default: all of them). */
export function summarize(records: readonly RequestRecord[], from = -Infinity, to = Infinity): LoadSummary {
  const window = records.filter((r) => r.start >= from && r.start < to);
  const byFailure: Record<FailureKind, number> = { non2xx: 0, reset: 0, timeout: 0, unfinished: 0 };
  const statuses: Record<string, number> = {};
  const releases: Record<string, number> = {};
  const servers: Record<string, number> = {};
  const latencies: number[] = [];
  let failed = 0;
  for (const r of window) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.failure) {
      failed++;
      byFailure[r.failure]++;
    } else latencies.push(r.end - r.start);
    if (r.release) releases[r.release] = (releases[r.release] ?? 0) + 1;
    if (r.server) servers[r.server] = (servers[r.server] ?? 0) + 1;
  }
  latencies.sort((a, b) => a - b);
  const first = window[0]?.start ?? 0;
  const last = window.reduce((m, r) => Math.max(m, r.start), first);
  const span = (Number.isFinite(to) ? to : last) - (Number.isFinite(from) ? from : first);
  return {
    requests: window.length,
    ok: window.length - failed,
    failed,
    byFailure,
    resent: window.filter((r) => r.resent).length,
    statuses,
    get: window.filter((r) => r.method === "GET").length,
    post: window.filter((r) => r.method === "POST").length,
    keepAlive: window.filter((r) => r.connection === "keep-alive").length,
    fresh: window.filter((r) => r.connection === "fresh").length,
    throughput: span > 0 ? (window.length - failed) / (span / 1000) : 0,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length ? (latencies[latencies.length - 1] as number) : Number.NaN,
    releases,
    servers,
  };
}

/** A few failed requests, for an assertion message. */
export function describeFailures(records: readonly RequestRecord[], limit = 8): string {
  const failed = records.filter((r) => r.failure);
  const t0 = records[0]?.start ?? 0;
  const lines = failed
    .slice(0, limit)
    .map(
      (r) =>
        `  +${((r.start - t0) / 1000).toFixed(3)}s ${r.method} (${r.connection}) ${r.failure}: ${r.error ?? ""}`,
    );
  if (failed.length > limit) lines.push(`  … and ${failed.length - limit} more`);
  return `${failed.length} failed request(s)${lines.length ? `:\n${lines.join("\n")}` : ""}`;
}

/** One fresh-connection GET; resolves with the status (0 on error) and the body. */
export function getOnce(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  assertLoopback(url);
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, body: "" }));
  });
}

/** Waits until `url` answers 200 `count` times in a row (fresh connections), within `deadlineMs`. */
export async function waitForSteady(url: string, count = 20, deadlineMs = 45_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  let streak = 0;
  while (Date.now() < deadline) {
    streak = (await getOnce(url)).status === 200 ? streak + 1 : 0;
    if (streak >= count) return true;
    await sleep(streak === 0 ? 250 : 20);
  }
  return false;
}

export interface NaiveHost {
  /** Host alias in the sandbox's ssh_config. */
  name: string;
  /** Absolute deploy path on the host (the sandbox's host home + apps/<app>). */
  deployDir: string;
  /** Where the app answers directly, e.g. http://127.0.9.11:3000. */
  appUrl: string;
}

export interface NaiveOptions {
  /** The sandbox's OpenSSH client config (`<sandbox dir>/ssh_config`). */
  sshConfig: string;
  hosts: NaiveHost[];
  /** A release already staged on every host (its directory and PM2 ecosystem file exist). */
  release: string;
  /** The remote command that restarts the app from an ecosystem file (nexus's own PM2 restart). */
  restartCommand: (ecosystem: string) => string;
  /** Pause after a server answers /health again, before the next one (default 0). */
  pauseMs?: number;
}

export interface NaiveStep {
  server: string;
  /** The switch and restart began and ended (ms since the epoch). */
  restartStart: number;
  restartEnd: number;
  /** The new process answered /health with the new release. */
  healthyAt: number;
}

const shq = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

function ssh(sshConfig: string, host: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      "ssh",
      ["-F", sshConfig, "-o", "BatchMode=yes", host, command],
      { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`ssh ${host}: ${error.message}\n${stderr}`));
        else resolve();
      },
    );
  });
}

/**
 * The naive way: server after server, switch `current` to the release and restart the app under
 * PM2 (the same PM2 delete + start nexus runs), with no drain, no reload barrier and no health
 * gate before traffic comes back; only a wait until the new process answers /health, so that two
 * servers are never down at once. Nginx keeps sending requests to each server as it restarts.
 */
export async function naiveRollout(options: NaiveOptions): Promise<NaiveStep[]> {
  const steps: NaiveStep[] = [];
  for (const host of options.hosts) {
    const ecosystem = `${host.deployDir}/.nexus/pm2/${options.release}.json`;
    const tmp = `current.tmp-naive-${options.release}`;
    const command = [
      `cd ${shq(host.deployDir)}`,
      `ln -sfn ${shq(`releases/${options.release}`)} ${shq(tmp)}`,
      `mv -Tf ${shq(tmp)} current`,
      options.restartCommand(ecosystem),
    ].join(" && ");
    const restartStart = now();
    await ssh(options.sshConfig, host.name, command);
    const restartEnd = now();
    const deadline = Date.now() + 15_000;
    let healthyAt = Number.NaN;
    while (Date.now() < deadline) {
      const answer = await getOnce(`${host.appUrl}/health`, 1000);
      if (answer.status === 200 && answer.body.includes(`"release":"${options.release}"`)) {
        healthyAt = now();
        break;
      }
      await sleep(50);
    }
    if (Number.isNaN(healthyAt)) throw new Error(`naive rollout: ${host.name} did not come back healthy`);
    steps.push({ server: host.name, restartStart, restartEnd, healthyAt });
    if (options.pauseMs) await sleep(options.pauseMs);
  }
  return steps;
}

/** One POST of the keep-alive storm: reused tells a request written on a socket an earlier one used. */
export interface StormRecord {
  start: number;
  end: number;
  status: number;
  /** Written on a pooled socket that had served an earlier request (Node's `req.reusedSocket`). */
  reused: boolean;
  failure?: FailureKind;
  error?: string;
  server?: string;
  release?: string;
}

export interface StormOptions {
  url: string;
  /** Keep-alive connections, each sending POSTs back to back (default 30). */
  connections?: number;
  timeoutSeconds?: number;
  /** Hard bound, as for startLoad. */
  maxSeconds: number;
}

export interface StormResult {
  startedAt: number;
  stoppedAt: number;
  connections: number;
  records: StormRecord[];
  hardStopped: boolean;
}

export interface StormHandle {
  readonly count: () => number;
  stop(): Promise<StormResult>;
}

/**
 * The load that catches a balancer closing client connections (issue 15): `connections` keep-alive
 * connections through one Node `http.Agent({ keepAlive: true })`, as server-to-server callers use,
 * each sending POSTs back to back with no think time, and never sending a failed request again.
 * A reload of Nginx makes its old workers close idle keep-alive client connections; a POST written
 * on such a socket at that instant is reset. Resets on reused and on fresh sockets are told apart.
 */
export function startPostStorm(options: StormOptions): StormHandle {
  assertLoopback(options.url);
  const connections = options.connections ?? 30;
  const timeoutMs = (options.timeoutSeconds ?? 5) * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const records: StormRecord[] = [];
  const startedAt = now();
  let stopping = false;
  let hardStopped = false;

  const postOnce = async () => {
    const record: StormRecord = { start: now(), end: 0, status: 0, reused: false };
    const reply = await sendOnce(options.url, ORDER_POST, agent, timeoutMs);
    settle(record, reply);
    record.reused = reply.reused;
    records.push(record);
  };

  const workers = Array.from({ length: connections }, async () => {
    while (!stopping) await postOnce();
  });
  const hardStop = setTimeout(() => {
    hardStopped = true;
    stopping = true;
  }, options.maxSeconds * 1000);
  hardStop.unref();

  let result: Promise<StormResult> | undefined;
  return {
    count: () => records.length,
    stop: () => {
      result ??= (async () => {
        stopping = true;
        await Promise.all(workers);
        clearTimeout(hardStop);
        agent.destroy();
        records.sort((a, b) => a.start - b.start);
        return { startedAt, stoppedAt: now(), connections, records, hardStopped };
      })();
      return result;
    },
  };
}

export interface StormSummary {
  requests: number;
  failed: number;
  /** Resets (no response) on a socket that had served a request before, and on a new one. */
  resetReused: number;
  resetFresh: number;
  non2xx: number;
  timeout: number;
  servers: Record<string, number>;
  releases: Record<string, number>;
}

export function summarizeStorm(records: readonly StormRecord[]): StormSummary {
  const servers: Record<string, number> = {};
  const releases: Record<string, number> = {};
  for (const r of records) {
    if (r.server) servers[r.server] = (servers[r.server] ?? 0) + 1;
    if (r.release) releases[r.release] = (releases[r.release] ?? 0) + 1;
  }
  const failed = records.filter((r) => r.failure);
  return {
    requests: records.length,
    failed: failed.length,
    resetReused: failed.filter((r) => r.failure === "reset" && r.reused).length,
    resetFresh: failed.filter((r) => r.failure === "reset" && !r.reused).length,
    non2xx: failed.filter((r) => r.failure === "non2xx").length,
    timeout: failed.filter((r) => r.failure === "timeout").length,
    servers,
    releases,
  };
}

export function describeStorm(label: string, s: StormSummary): string {
  return `${label}: ${s.requests} keep-alive POSTs, ${s.failed} failed (reset on a reused socket ${s.resetReused}, on a fresh socket ${s.resetFresh}, non-2xx ${s.non2xx}, timeout ${s.timeout})`;
}

/**
 * Reads something every `intervalMs` until stopped (the balancer's live state during a deploy):
 * how many reads there were, and what each read found wrong (reads that found nothing are left out).
 */
export function sampleEvery<T>(
  intervalMs: number,
  read: () => Promise<T[]>,
): { stop(): Promise<{ samples: number; wrong: T[][] }> } {
  let stopping = false;
  let samples = 0;
  const wrong: T[][] = [];
  const loop = (async () => {
    while (!stopping) {
      const found = await read();
      samples++;
      if (found.length > 0) wrong.push(found);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await loop;
      return { samples, wrong };
    },
  };
}
