import { isIP } from "node:net";
import { ConfigError } from "../../../config/errors.js";
import { resolveRemotePath } from "../../../remote/layout.js";
import type { TrafficWatch, WatchContext } from "../../driver.js";
import type { NginxBalancerConfig } from "../schema.js";
import { AccessLogProblem, checkAccessLog } from "./log-check.js";
import { NginxLogSource } from "./log-source.js";

/**
 * rolling.watch through Nginx: its access log, read on the balancer host. Checked before any
 * server is drained: the log is there, readable and in the nexus format (a ConfigError, exit 2,
 * names the fix); the fleet's failure rate in its last lines is the baseline.
 */
export async function watchNginx(entry: NginxBalancerConfig, context: WatchContext): Promise<TrafficWatch> {
  const { config, emit, host } = context;
  const path = resolveRemotePath(entry.accessLog, host.home);
  let check: Awaited<ReturnType<typeof checkAccessLog>>;
  try {
    check = await checkAccessLog(host.runner, {
      path,
      testCommand: entry.testCommand,
      addresses: config.servers.map((s) => asLogged(s.upstream)),
    });
  } catch (error) {
    if (error instanceof AccessLogProblem)
      throw new ConfigError(config.file, [`balancer.accessLog (needed by rolling.watch): ${error.message}`]);
    throw error;
  }
  if (check.warning) emit({ type: "warn", server: host.runner.name, message: check.warning });
  for (const server of config.servers) {
    const address = server.upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    if (isIP(address) === 0) {
      emit({
        type: "warn",
        server: server.name,
        message: `upstream ${server.upstream} is a host name: Nginx logs the address it resolved to, so the watch cannot see this server's traffic; write its address in servers[].upstream`,
      });
    }
  }
  if (check.baseline) {
    emit({
      type: "info",
      message: `watch: before the deploy, ${check.baseline.failures} of ${check.baseline.requests} recent request(s) failed at the balancer`,
    });
  }
  const byAddress = new Map(config.servers.map((s) => [asLogged(s.upstream), s.name]));
  return {
    source: new NginxLogSource(host.runner, path),
    serverOf: (key) => byAddress.get(key),
    baseline: check.baseline,
  };
}

/** An upstream as Nginx logs the address it sent a request to: with its port (80 when it has none). */
function asLogged(upstream: string): string {
  return /:\d+$|^\[/.test(upstream) ? upstream : `${upstream}:80`;
}
