import { resolveRemotePath } from "../../remote/layout.js";
import type { InteractiveRunner } from "../../ssh/session.js";
import type { BalancerContext } from "../driver.js";
import { HaproxyBalancer } from "./haproxy.js";
import type { HaproxyBalancerConfig } from "./schema.js";

/** The driver for one `balancer` entry of type "haproxy". */
export function createHaproxy(
  entry: HaproxyBalancerConfig,
  runner: InteractiveRunner,
  context: BalancerContext,
): HaproxyBalancer {
  return new HaproxyBalancer(runner, {
    socket: resolveRemotePath(entry.socket, context.home),
    backend: entry.backend,
    serverName: (server) => entry.servers[server.name] ?? server.name,
    stateFile: entry.stateFile ? resolveRemotePath(entry.stateFile, context.home) : undefined,
    onWarning: context.onWarning,
    onCommand: context.onCommand,
  });
}
