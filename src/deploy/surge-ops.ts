import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { readLivePort, writeLivePort } from "../remote/live-port.js";
import { runOp } from "../remote/op.js";
import { activate as pointCurrent } from "../remote/release.js";
import type { SurgeOps } from "../rollout/fleet-ops.js";
import { activate } from "./activate.js";
import type { Fleet, Host } from "./fleet.js";
import type { PreparedRestarts } from "./fleet-ops.js";
import { releaseEnv } from "./release-env.js";

/**
 * The process manager's process for a port: on app.port the app's own process (the one the drain
 * strategy knows: after an even number of surges a server is as if it never surged), on
 * app.surgePort a process of its own ("<name>-<port>").
 */
export function processSlot(config: Config, port: number | undefined): number | undefined {
  return port === undefined || port === config.app.port ? undefined : port;
}

/** The surge strategy's moves (`SurgeOps`) on the real fleet: its SSH sessions and process manager. */
export function surgeOps(
  fleet: Fleet,
  config: Config,
  emit: Emit,
  host: (name: string) => Promise<Host>,
  restarts: PreparedRestarts,
): SurgeOps {
  return {
    prepare(server, release, port) {
      restarts.prepare(server.name, release, processSlot(config, port));
    },
    async livePort(server) {
      const h = await host(server.name);
      return runOp(h.session, readLivePort(h.layout));
    },
    async start(server, release, port, signal) {
      const h = await host(server.name);
      // The process file of this release on this port: its own name, and PORT set to the port
      // whatever the env says (the gate probes it there).
      const slot = processSlot(config, port);
      const file = fleet.processes.processFile(h.layout, {
        release,
        cwd: h.layout.release(release),
        env: { ...releaseEnv(config, server, release), PORT: String(port) },
        port: slot,
      });
      await runOp(h.session, file.write);
      // Readied when the roll began (`prepare`), as the drain strategy's restarts are: its PM2
      // connection (a Node start, ~0.2–1 s) is open by the time the server's turn comes, and the
      // gate's process checks go through it (a few ms each) instead of a `pm2 jlist` apiece.
      const prepared =
        (await restarts.take(server.name, release, h.session, slot)) ??
        (h.session.alive ? fleet.processes.prepareRestart?.(h.session, h.layout, release, slot) : undefined);
      try {
        const result = await activate(h, release, config, fleet.processes, emit, signal, prepared, {
          port,
          slot,
        });
        return result.gate.ok;
      } finally {
        prepared?.close();
      }
    },
    async record(server, port) {
      const h = await host(server.name);
      await runOp(h.session, writeLivePort(h.layout, port));
    },
    async stop(server, port) {
      await fleet.processes.stop((await host(server.name)).session, processSlot(config, port));
    },
    async point(server, release) {
      const h = await host(server.name);
      await runOp(h.session, pointCurrent(h.layout, release));
    },
  };
}
