import type { ServerConfig } from "../config/load.js";
import { allDone } from "../util/all-done.js";
import {
  type BackendState,
  type Balancer,
  type DrainWait,
  type DrainWaitOptions,
  type RotationChange,
  stillOpen,
} from "./balancer.js";
import { BalancerError } from "./balancer-error.js";

/**
 * Several balancers in front of the same servers (an HA pair): a server leaves rotation on every
 * balancer before it is touched and comes back on all of them after its gate.
 */
export class MultiBalancer implements Balancer {
  constructor(private readonly balancers: readonly Balancer[]) {}

  async settle(): Promise<void> {
    await Promise.all(this.balancers.map((balancer) => balancer.settle?.()));
  }

  async close(): Promise<void> {
    await Promise.all(this.balancers.map((balancer) => balancer.close?.()));
  }

  get sharesChanges(): boolean {
    return this.balancers.some((b) => b.sharesChanges);
  }

  get host(): string {
    return this.balancers.map((b) => b.host).join(", ");
  }

  /** In rotation only where every balancer has it in rotation; present only where all list it. */
  async state(servers: readonly ServerConfig[]): Promise<BackendState[]> {
    const views = await Promise.all(this.balancers.map((b) => b.state(servers)));
    return servers.map((server, index) => {
      const mine = views.map((view) => view[index] as BackendState);
      const missing = mine
        .map((state, i) => (state.present ? undefined : (this.balancers[i] as Balancer).host))
        .filter((host): host is string => host !== undefined);
      return {
        server: server.name,
        upstream:
          missing.length > 0 ? `${server.upstream} (missing on ${missing.join(", ")})` : server.upstream,
        present: missing.length === 0,
        inRotation: mine.every((state) => state.inRotation),
        ...(new Set(mine.map((state) => state.address)).size === 1 && mine[0]?.address
          ? { address: mine[0].address }
          : {}),
      };
    });
  }

  /**
   * The change on every balancer at once. If one refuses, the drains that did happen elsewhere are
   * undone (the engine will not touch a server it could not drain), and the error names each one.
   */
  async apply(change: RotationChange): Promise<void> {
    const results = await Promise.allSettled(this.balancers.map((b) => b.apply(change)));
    const failed = results.flatMap((result, i) =>
      result.status === "rejected"
        ? [{ balancer: this.balancers[i] as Balancer, error: result.reason as Error }]
        : [],
    );
    if (failed.length === 0) return;
    const notes: string[] = [];
    const drained = change.drain ?? [];
    if (drained.length > 0) {
      const applied = this.balancers.filter((_, i) => results[i]?.status === "fulfilled");
      const undone = await Promise.allSettled(applied.map((b) => b.apply({ enable: drained })));
      undone.forEach((result, i) => {
        const host = (applied[i] as Balancer).host;
        notes.push(
          result.status === "fulfilled"
            ? `the drain was undone on ${host}`
            : `the drain could not be undone on ${host}: ${(result.reason as Error).message.split("\n")[0]}`,
        );
      });
    }
    if ((change.enable ?? []).length > 0 && failed.length < this.balancers.length) {
      notes.push(
        `enabled on ${this.balancers
          .filter((_, i) => results[i]?.status === "fulfilled")
          .map((b) => b.host)
          .join(", ")} only`,
      );
    }
    throw new BalancerError(
      [...failed.map(({ error }) => error.message), ...notes.map((note) => `(${note})`)].join("\n"),
    );
  }

  /** Drained when no balancer holds a connection to the server any more. */
  waitDrained(server: ServerConfig, timeoutMs: number, options?: DrainWaitOptions): Promise<DrainWait> {
    return this.waitAll((b) => b.waitDrained(server, timeoutMs, options));
  }

  /** Left when no balancer holds a connection to the server's old address any more. */
  waitLeft(server: ServerConfig, address: string, timeoutMs: number): Promise<DrainWait> {
    return this.waitAll((b) => b.waitLeft(server, address, timeoutMs));
  }

  private async waitAll(wait: (balancer: Balancer) => Promise<DrainWait>): Promise<DrainWait> {
    const all = await allDone(this.balancers.map(wait));
    const drained = all.every((r) => r.drained);
    // Drained: what each waited for. Not drained: only the balancers that still hold the server.
    const details = all.flatMap((r, i) => {
      const host = this.balancers[i]?.host;
      if (!drained) return r.drained ? [] : [`${host}: ${stillOpen(r)}`];
      return r.detail ? [`${host}: ${r.detail}`] : [];
    });
    const sum = (count: (r: DrainWait) => number | undefined) =>
      all.some((r) => count(r) !== undefined) ? all.reduce((n, r) => n + (count(r) ?? 0), 0) : undefined;
    const connections = sum((r) => r.connections);
    const shut = sum((r) => r.shut);
    return {
      drained,
      open: all.reduce((n, r) => n + r.open, 0),
      ...(connections !== undefined ? { connections } : {}),
      ...(shut !== undefined ? { shut } : {}),
      ...(details.length > 0 ? { detail: details.join("; ") } : {}),
    };
  }
}
