import type { Config } from "../config/load.js";
import { resolveRemotePath } from "../remote/layout.js";
import type { CommandRunner } from "../ssh/session.js";
import type { Balancer } from "./balancer.js";
import { NginxBalancer } from "./nginx.js";

export interface BalancerContext {
  /** Runs commands on the balancer host (over SSH, or locally). */
  runner: CommandRunner;
  /** The balancer host's home, for "~/" paths. */
  home: string;
  onWarning: (message: string) => void;
}

/** The balancer driver a config asks for; a new driver is one folder and one case here. */
export function createBalancer(config: Config["balancer"], context: BalancerContext): Balancer {
  switch (config.type) {
    case "nginx":
      return new NginxBalancer(context.runner, {
        upstreamFile: resolveRemotePath(config.upstreamFile, context.home),
        upstream: config.upstream,
        testCommand: config.testCommand,
        reloadCommand: config.reloadCommand,
        pidFile: resolveRemotePath(config.pidFile, context.home),
        onWarning: context.onWarning,
      });
  }
}
