import type { BackendState } from "../balancer/balancer.js";
import type { Config } from "../config/load.js";
import type { Emit, SummaryRow } from "../events/events.js";
import type { ProcessInfo } from "../process/process-manager.js";
import { appPortOf, nextPort, writeLivePort } from "../remote/live-port.js";
import { runOps } from "../remote/op.js";
import { activate as pointCurrent } from "../remote/release.js";
import type { Fleet, Host } from "./fleet.js";
import { checkHealth, servingPort } from "./health-check.js";
import type { ServerState } from "./state.js";
import { processSlot } from "./surge-ops.js";

/**
 * The port the balancer sends a server's traffic to, when it is in rotation there and that port is
 * one of the app's (app.port, app.surgePort); else undefined.
 */
export function servingAt(
  backend: BackendState | undefined,
  app: { port: number; surgePort: number },
): number | undefined {
  return backend?.present && backend.inRotation ? appPortOf(backend.address, app) : undefined;
}

/** Every instance is online and runs `release` (as its NEXUS_RELEASE says), and there is one at least. */
export function servesOnly(processes: readonly ProcessInfo[], release: string): boolean {
  return processes.length > 0 && processes.every((p) => p.status === "online" && p.release === release);
}

export interface KeepServingInput {
  config: Config;
  fleet: Fleet;
  emit: Emit;
  states: Map<string, ServerState>;
  backends: readonly BackendState[];
  targetOf: (name: string) => string | undefined;
}

/**
 * Servers a killed command pointed at its new release while the balancer still sends their traffic
 * to a healthy process of their recovery target: a surge cut off before its switch, its new
 * process started (or about to be) on the other port. That process is kept: the other port's one
 * is stopped, `current` points back at the target, the live-port record names the port. Nothing is
 * restarted, so nothing the old process serves (a WebSocket, a warm cache) is lost. Their summary
 * rows, by server; a server not kept (or whose keeping failed) is left to the usual switch back.
 */
export async function keepServing(
  input: KeepServingInput,
  hosts: readonly Host[],
): Promise<Map<string, SummaryRow>> {
  const { config, fleet, emit, states, backends, targetOf } = input;
  const rows = new Map<string, SummaryRow>();
  await Promise.all(
    hosts.map(async (h) => {
      const name = h.server.name;
      const target = targetOf(name);
      const port = servingAt(
        backends.find((b) => b.server === name),
        config.app,
      );
      if (!target || target === states.get(name)?.current || port === undefined) return;
      try {
        const serving = await fleet.processes.inspect(h.session, processSlot(config, port));
        if (!servesOnly(serving, target)) return;
        if (!(await checkHealth(h, config, servingPort(config, port))).ok) return;
        const other = nextPort(port, config.app);
        emit({
          type: "step",
          server: name,
          step: "restore",
          status: "start",
          message: `its process on port ${port} still serves ${target}: kept; stopping the one on port ${other}`,
        });
        await fleet.processes.stop(h.session, processSlot(config, other));
        // `current` back, and the record set to the port when it says another: one exchange.
        const recorded = (states.get(name)?.livePort ?? config.app.port) === port;
        const done = await runOps(h.session, [
          pointCurrent(h.layout, target),
          ...(recorded ? [] : [writeLivePort(h.layout, port)]),
        ]);
        const failed = done.find((r) => r.status === "rejected");
        if (failed) throw failed.reason;
        emit({
          type: "step",
          server: name,
          step: "restore",
          status: "done",
          message: `${target} kept on port ${port}; the process on port ${other} stopped`,
        });
        rows.set(name, {
          server: name,
          result: "restored",
          release: target,
          note: "its old process still served it: kept, not restarted",
        });
      } catch (error) {
        emit({
          type: "warn",
          server: name,
          message: `keeping its serving process failed (${(error as Error).message.split("\n")[0]}): ${target} is restarted instead`,
        });
      }
    }),
  );
  return rows;
}
