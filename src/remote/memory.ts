import { stdoutOrThrow } from "../ssh/errors.js";
import { type RemoteOp, script } from "./op.js";
import { scriptFile } from "./script-file.js";

/** Prints MemAvailable of /proc/meminfo in kB, or nothing. */
export const MEM_AVAILABLE_SCRIPT = scriptFile(import.meta.url, "mem-available.sh");

/** Bytes the kernel says new processes can have without swapping, or undefined where it does not say. */
export function readMemAvailable(): RemoteOp<number | undefined> {
  const what = "reading the memory available";
  return {
    what,
    command: script(MEM_AVAILABLE_SCRIPT),
    parse: (result, server) => {
      const kb = stdoutOrThrow(server, what, result).trim();
      return /^\d+$/.test(kb) ? Number(kb) * 1024 : undefined;
    },
  };
}

/**
 * Under the surge strategy the new release runs beside the serving one until the switch: about as
 * much memory again as the serving instances hold (their RSS), plus a margin for a start-up peak.
 * The shortfall in bytes, or 0 when it fits (or nothing is known to serve).
 */
export function surgeMemoryShortfall(available: number, servingRss: number, margin = 0.2): number {
  return Math.max(0, Math.ceil(servingRss * (1 + margin) - available));
}

export function megabytes(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
