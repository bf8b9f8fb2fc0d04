import { stdoutOrThrow } from "../ssh/errors.js";
import type { Layout } from "./layout.js";
import { type RemoteOp, script } from "./op.js";
import { writePrivateFile } from "./release.js";
import { scriptFile } from "./script-file.js";

/**
 * The surge strategy's record of which port serves on a server (`.nexus/live-port`): written once
 * the balancer sends the server's traffic to the new process, read before the next surge to pick
 * the other port. No file: the app's one process, on app.port (a server never surged).
 */

/** $1 the live-port file: prints it, or nothing when there is none. */
export const LIVE_PORT_READ_SCRIPT = scriptFile(import.meta.url, "live-port-read.sh");

/** The port recorded, or undefined (no record, or not a port). */
export function parseLivePort(text: string): number | undefined {
  const value = text.trim();
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : undefined;
}

export function readLivePort(l: Layout): RemoteOp<number | undefined> {
  const what = "reading the live port";
  return {
    what,
    command: script(LIVE_PORT_READ_SCRIPT, l.livePort),
    parse: (result, server) => parseLivePort(stdoutOrThrow(server, what, result)),
  };
}

export function writeLivePort(l: Layout, port: number): RemoteOp<void> {
  return writePrivateFile(l.livePort, `${port}\n`, "recording the live port");
}

/**
 * The port of a balancer address ("10.0.0.2:3001", "[::1]:3000") when it is one of the app's
 * (app.port, app.surgePort); else undefined.
 */
export function appPortOf(
  address: string | undefined,
  ports: { port: number; surgePort: number },
): number | undefined {
  const port = Number(address?.replace(/^.*:/, ""));
  return port === ports.port || port === ports.surgePort ? port : undefined;
}

/**
 * The surge strategy's port for the next process: the one of app.port and app.surgePort that is
 * not `live` (no record: the app's process serves on app.port).
 */
export function nextPort(live: number | undefined, ports: { port: number; surgePort: number }): number {
  return live === ports.surgePort ? ports.port : ports.surgePort;
}
