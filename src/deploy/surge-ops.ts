import type { Config, ServerConfig } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { readLivePort, writeLivePort } from "../remote/live-port.js";
import { runOp } from "../remote/op.js";
import { activate as pointCurrent } from "../remote/release.js";
import type { ServerState } from "../remote/server-state.js";
import type { SurgeOps } from "../rollout/fleet-ops.js";
import type { SshSession } from "../ssh/session.js";
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
  states?: ReadonlyMap<string, ServerState>,
): SurgeOps {
  // The live-port record of each server as known: read under the lock, then as written. Nothing
  // else writes it while the lock is held.
  const recorded = new Map<string, number | undefined>();
  for (const [name, state] of states ?? []) recorded.set(name, state.livePort);
  // Process files written ahead of their server's turn (`writeProcessFile`), per server.
  const files = new Map<
    string,
    { release: string; port: number; session: SshSession; written: Promise<boolean> }
  >();
  /**
   * The process file of this release on this port: its own name, and PORT set to the port
   * whatever the env says (the gate probes it there).
   */
  const writeFile = (h: Host, server: ServerConfig, release: string, port: number) =>
    runOp(
      h.session,
      fleet.processes.processFile(h.layout, {
        release,
        cwd: h.layout.app(release),
        env: { ...releaseEnv(config, server, release), PORT: String(port) },
        port: processSlot(config, port),
      }).write,
    );
  return {
    prepare(server, release, port) {
      restarts.prepare(server.name, release, processSlot(config, port));
    },
    writeProcessFile(server, release, port) {
      const h = fleet.hosts.get(server.name);
      if (!h?.session.alive) return;
      const written = writeFile(h, server, release, port).then(
        () => true,
        () => false,
      );
      files.set(server.name, { release, port, session: h.session, written });
    },
    async livePort(server) {
      if (recorded.has(server.name)) return recorded.get(server.name);
      const h = await host(server.name);
      const port = await runOp(h.session, readLivePort(h.layout));
      recorded.set(server.name, port);
      return port;
    },
    async start(server, release, port, signal) {
      const h = await host(server.name);
      const slot = processSlot(config, port);
      // Written when the roll began, unless that failed or was for another port or connection.
      const ahead = files.get(server.name);
      files.delete(server.name);
      const written =
        ahead?.release === release &&
        ahead.port === port &&
        ahead.session === h.session &&
        (await ahead.written);
      if (!written) await writeFile(h, server, release, port);
      // Readied when the roll began (`prepare`), as the drain strategy's restarts are: its PM2
      // connection (a Node start, ~0.2–1 s) is open by the time the server's turn comes, and the
      // gate's process checks go through it (a few ms each) instead of a `pm2 jlist` apiece.
      const prepared =
        (await restarts.take(server.name, release, h.session, slot)) ??
        (h.session.alive ? fleet.processes.prepareRestart?.(h.session, h.layout, release, slot) : undefined);
      let passed = false;
      try {
        const result = await activate(h, release, config, fleet.processes, emit, signal, prepared, {
          port,
          slot,
        });
        passed = result.gate.ok;
        return passed;
      } finally {
        // Kept to retire the process this one replaces, once the balancer has moved (`stop`).
        if (passed && prepared?.alive) restarts.keep(server.name, h.session, prepared);
        else prepared?.close();
      }
    },
    async record(server, port) {
      const h = await host(server.name);
      recorded.delete(server.name);
      await runOp(h.session, writeLivePort(h.layout, port));
      recorded.set(server.name, port);
    },
    async stop(server, port) {
      const { session } = await host(server.name);
      const slot = processSlot(config, port);
      if (await restarts.retire(server.name, session, slot)) return;
      await fleet.processes.stop(session, slot);
    },
    async point(server, release) {
      const h = await host(server.name);
      await runOp(h.session, pointCurrent(h.layout, release));
    },
  };
}
