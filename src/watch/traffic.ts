/** What a load balancer saw of one server over a span of time. */
export interface Counts {
  requests: number;
  /** 5xx answers, upstream connect/read errors, timeouts. */
  failures: number;
  /**
   * The response times (ms) of the requests that were answered, when the source has them (the
   * Nginx access log's upstream time; HAProxy's counters have none).
   */
  latencies?: number[];
}

/**
 * Per-server traffic as the load balancer saw it. Implementations: the Nginx access log
 * (nginx-source.ts) and, once its driver exists, HAProxy's `show stat` counters (haproxy-stat.ts).
 */
export interface TrafficSource {
  /** Starts counting from now: what happened before is not reported by the next poll. */
  mark(): Promise<void>;
  /** What happened since the last mark or poll, keyed as the balancer names servers (an address for Nginx). */
  poll(): Promise<Map<string, Counts>>;
}

export function addCounts(into: Counts, more: Counts | undefined): Counts {
  if (more) {
    into.requests += more.requests;
    into.failures += more.failures;
    if (more.latencies) {
      into.latencies ??= [];
      for (const value of more.latencies) into.latencies.push(value);
    }
  }
  return into;
}

export function rate(counts: Counts): number {
  return counts.requests > 0 ? counts.failures / counts.requests : 0;
}
