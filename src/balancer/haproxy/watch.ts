import type { TrafficWatch, WatchContext } from "../driver.js";
import { createHaproxy } from "./create.js";
import type { HaproxyBalancerConfig } from "./schema.js";
import { standbyName } from "./standby.js";
import { HaproxyStatSource } from "./traffic-source.js";

/**
 * rolling.watch through HAProxy: its per-server counters (`show stat`) through the admin socket,
 * on a runtime API connection of the watch's own; no log format needed.
 */
export async function watchHaproxy(
  entry: HaproxyBalancerConfig,
  context: WatchContext,
): Promise<TrafficWatch> {
  const { config, host } = context;
  const haproxy = createHaproxy(entry, host.runner, { home: host.home });
  context.closeWith(haproxy);
  // A server's standby line (the surge strategy's) counts as the server: it serves after a switch.
  const byName = new Map(
    config.servers.flatMap((s) => {
      const name = entry.servers[s.name] ?? s.name;
      return [
        [name, s.name],
        [standbyName(name), s.name],
      ] as const;
    }),
  );
  return {
    source: new HaproxyStatSource(() => haproxy.showStat(), entry.backend),
    serverOf: (key) => byName.get(key),
  };
}
