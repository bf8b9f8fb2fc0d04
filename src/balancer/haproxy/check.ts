import type { CheckItem } from "../../check/types.js";
import { nexusCommand } from "../../config/invocation.js";
import type { CheckContext } from "../driver.js";
import { createHaproxy } from "./create.js";
import type { HaproxyBalancer } from "./haproxy.js";
import type { HaproxyBalancerConfig } from "./schema.js";

/** `nexus check` of an HAProxy host: the admin socket answers, and its backend lists every server. */
export async function checkHaproxy(
  entry: HaproxyBalancerConfig,
  context: CheckContext,
): Promise<CheckItem[]> {
  const { config, host, target } = context;
  const balancer: HaproxyBalancer = createHaproxy(entry, host.runner, { home: host.home });
  try {
    const states = await balancer.state(config.servers);
    const missing = states.filter((s) => !s.present);
    const standbyMissing =
      config.rolling.strategy === "surge" ? await balancer.serversWithoutStandby(config.servers) : [];
    return [
      { target, check: "admin socket", status: "ok", detail: "answers at level admin" },
      missing.length === 0
        ? {
            target,
            check: "servers listed",
            status: "ok",
            detail: `${states.length} server(s) in the backend`,
          }
        : {
            target,
            check: "servers listed",
            status: "fail",
            detail: `the backend lacks ${missing.map((m) => `${m.server} (${m.upstream})`).join(", ")}`,
            fix: `add them to the backend (see \`${nexusCommand("haproxy-config")}\`), or map names with balancer.servers`,
          },
      ...(standbyMissing.length > 0
        ? [
            {
              target,
              check: "standby lines",
              status: "warn" as const,
              detail: `rolling.strategy surge: no standby line for ${standbyMissing.join(", ")}: the switch then re-addresses the server's line, and a request HAProxy sends on a connection it keeps to the old process can be reset as that process stops`,
              fix: "add `server <name>-surge <address>:<app.surgePort> disabled weight 0` per server (`nexus haproxy-config` prints them)",
            },
          ]
        : []),
    ];
  } catch (error) {
    return [
      {
        target,
        check: "admin socket",
        status: "fail",
        detail: (error as Error).message,
        fix: `add \`stats socket <balancer.socket> mode 660 level admin\` to HAProxy's global section, readable by the login user (see \`${nexusCommand("haproxy-config")}\`)`,
      },
    ];
  } finally {
    await balancer.close();
  }
}
