import type { BalancerConfig } from "../config/load.js";
import { resolveRemotePath } from "../remote/layout.js";
import type { InteractiveRunner } from "../ssh/session.js";
import type { Balancer } from "./balancer.js";
import { HaproxyBalancer } from "./haproxy/haproxy.js";
import { MultiBalancer } from "./multi.js";
import { NginxBalancer } from "./nginx/nginx.js";

export interface BalancerContext {
  /** Home directory on the balancer host, for paths starting with "~/". */
  home: string;
  onWarning?: (message: string) => void;
  /** --verbose: each change sent to a runtime API (its reads, polled every few ms, are not shown). */
  onCommand?: (server: string, command: string) => void;
}

/** One balancer driver from its config entry. A new driver is one folder and one case here. */
export function createBalancer(
  entry: BalancerConfig,
  runner: InteractiveRunner,
  context: BalancerContext,
): Balancer {
  const path = (p: string) => resolveRemotePath(p, context.home);
  switch (entry.type) {
    case "nginx":
      return new NginxBalancer(runner, {
        upstreamFile: path(entry.upstreamFile),
        upstream: entry.upstream,
        testCommand: entry.testCommand,
        reloadCommand: entry.reloadCommand,
        pidFile: path(entry.pidFile),
        onWarning: context.onWarning,
      });
    case "haproxy":
      return new HaproxyBalancer(runner, {
        socket: path(entry.socket),
        backend: entry.backend,
        serverName: (server) => entry.servers[server.name] ?? server.name,
        stateFile: entry.stateFile ? path(entry.stateFile) : undefined,
        onWarning: context.onWarning,
        onCommand: context.onCommand,
      });
  }
}

/** The fleet's balancer: the one driver, or all of them behind one interface. */
export function combineBalancers(balancers: readonly Balancer[]): Balancer {
  if (balancers.length === 1) return balancers[0] as Balancer;
  return new MultiBalancer(balancers);
}
