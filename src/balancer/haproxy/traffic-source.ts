import type { Counts, TrafficSource } from "../../watch/traffic.js";
import { parseShowStat, type ServerCounters, statDeltas } from "./stat-counters.js";

/**
 * Per-server traffic from HAProxy's cumulative `show stat` counters, as deltas between polls,
 * keyed by the HAProxy server name. `showStat` returns the CSV (HaproxyBalancer.showStat).
 */
export class HaproxyStatSource implements TrafficSource {
  private last = new Map<string, ServerCounters>();

  constructor(
    private readonly showStat: () => Promise<string>,
    private readonly backend: string,
  ) {}

  async mark(): Promise<void> {
    this.last = parseShowStat(await this.showStat(), this.backend);
  }

  async poll(): Promise<Map<string, Counts>> {
    const now = parseShowStat(await this.showStat(), this.backend);
    const deltas = statDeltas(this.last, now);
    this.last = now;
    return deltas;
  }
}
