import type { DrainWait } from "../../balancer/balancer.js";
import type { ConnectionsCut } from "../../events/events.js";

/**
 * The client connections a drain's timeout left open on a server (long-lived: WebSockets, SSE),
 * and what closes them: the balancer when it shut them (HAProxy's `shutdown sessions server`),
 * else the restart that follows (PM2's SIGINT; the app's contract, docs/apps.md). Undefined when
 * none was left (drained, or only retired Nginx workers were still running).
 */
export function connectionsCut(wait: DrainWait): ConnectionsCut | undefined {
  if (wait.drained) return undefined;
  const connections = wait.connections ?? 0;
  if (connections <= 0) return undefined;
  const byBalancer = Math.min(Math.max(0, wait.shut ?? 0), connections);
  return { byBalancer, byRestart: connections - byBalancer };
}

/** Two counts of the same server (drained twice: a deploy and its rollback) as one. */
export function addConnectionsCut(a: ConnectionsCut | undefined, b: ConnectionsCut): ConnectionsCut {
  return { byBalancer: (a?.byBalancer ?? 0) + b.byBalancer, byRestart: (a?.byRestart ?? 0) + b.byRestart };
}

/** The drain step's line: "3 connection(s) still open at the drain timeout: 3 shut by the balancer". */
export function describeConnectionsCut(cut: ConnectionsCut): string {
  const parts = [
    ...(cut.byBalancer > 0 ? [`${cut.byBalancer} shut by the balancer`] : []),
    ...(cut.byRestart > 0 ? [`${cut.byRestart} left to the restart (the app closes them on SIGINT)`] : []),
  ];
  return `${cut.byBalancer + cut.byRestart} connection(s) still open at the drain timeout: ${parts.join(", ")}`;
}
