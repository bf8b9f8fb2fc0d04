import type { Config } from "../config/load.js";
import { megabytes, readMemAvailable, surgeMemoryShortfall } from "../remote/memory.js";
import { runOp } from "../remote/op.js";
import type { Fleet, Host } from "./fleet.js";
import { PlanError } from "./plan.js";
import type { ServerState } from "./state.js";
import { processSlot } from "./surge-ops.js";

/**
 * Under the surge strategy, before anything changes: each server must have the memory for the new
 * release's instances beside the serving ones (as many again under PM2 cluster mode), judged by
 * the serving instances' RSS against the kernel's MemAvailable. Refused otherwise: a surge that
 * runs out of memory would have the kernel kill one of the two, the serving one maybe.
 */
export async function assertSurgeMemory(
  config: Config,
  fleet: Fleet,
  hosts: Host[],
  states: Map<string, ServerState>,
): Promise<void> {
  if (config.rolling.strategy !== "surge") return;
  const short = await Promise.all(
    hosts.map(async (h) => {
      const slot = processSlot(config, states.get(h.server.name)?.livePort);
      // What cannot be read is not judged here: the steps that need it say what is wrong.
      const [available, serving] = await Promise.all([
        runOp(h.session, readMemAvailable()).catch(() => undefined),
        fleet.processes.inspect(h.session, slot).catch(() => []),
      ]);
      const rss = serving.reduce((sum, p) => sum + (p.memory ?? 0), 0);
      if (available === undefined || rss === 0) return [];
      const missing = surgeMemoryShortfall(available, rss);
      return missing > 0
        ? [
            `${h.server.name}: ${megabytes(available)} available; its ${serving.length} serving instance(s) use ${megabytes(rss)}, and the new ones need as much again plus a fifth: ${megabytes(missing)} short`,
          ]
        : [];
    }),
  );
  const problems = short.flat();
  if (problems.length > 0) {
    throw new PlanError(
      `not enough memory for the surge strategy (the new release runs beside the serving one until the switch):\n  ${problems.join("\n  ")}\n  fix: free memory on those servers, or roll with --strategy drain`,
    );
  }
}
