import { resolveRemotePath } from "../../remote/layout.js";
import type { InteractiveRunner } from "../../ssh/session.js";
import type { BalancerContext } from "../driver.js";
import { NginxBalancer } from "./nginx.js";
import type { NginxBalancerConfig } from "./schema.js";

/** The driver for one `balancer` entry of type "nginx". */
export function createNginx(
  entry: NginxBalancerConfig,
  runner: InteractiveRunner,
  context: BalancerContext,
): NginxBalancer {
  return new NginxBalancer(runner, {
    upstreamFile: resolveRemotePath(entry.upstreamFile, context.home),
    upstream: entry.upstream,
    testCommand: entry.testCommand,
    reloadCommand: entry.reloadCommand,
    pidFile: resolveRemotePath(entry.pidFile, context.home),
    onWarning: context.onWarning,
  });
}
