import { cmd } from "../../remote/quote.js";
import { scriptFile, withFunctions } from "../../remote/script-file.js";

/** Shell the Nginx driver runs on the balancer host. Nothing here does I/O. */

export function readFile(file: string): string {
  return cmd("cat", file);
}

/** A centisecond clock for the scripts' waits (`uptime_cs`). */
const UPTIME_FUNCTION = scriptFile(import.meta.url, "uptime.sh");

/** Exit codes of APPLY_SCRIPT. */
export const APPLY_EXIT = {
  /** Reloaded, but the master's pid file could not be read to confirm it: the change is in force. */
  reloadUnconfirmed: 70,
  /** Reloaded, but the old workers did not hand over in time: the change is in force. */
  reloadTimeout: 71,
  testFailed: 80,
  cannotWrite: 81,
  /** The file changed since nexus read it (another run edited it): read again and retry. */
  changed: 82,
  lockTimeout: 83,
  noSha256sum: 84,
} as const;

/**
 * $1 the upstream file, $2 the sha256 of the content nexus read and edited, $3 the test command,
 * $4 the reload command, $5 the Nginx master's pid file, $6 seconds to wait for the edit lock,
 * $7 the barrier: "retired" (the default) or "started" (see below).
 * The new content comes on stdin. One round trip that writes, tests, reloads and confirms:
 *
 * - Concurrent runs (two deploys, a drain during a deploy, two apps sharing the file) must not
 *   lose each other's edits: the edit runs under `flock` on the file itself, and writes only if
 *   the file still holds what nexus read (compare-and-swap on its sha256; exit 82 asks for a fresh
 *   read). The file is written in place, so its inode (the lock), owner and mode stay.
 * - The backup is a private temp file (never beside the file: a directory included with `*`
 *   would load it as a second upstream), removed once the change is in force or restored.
 * - Works as an unprivileged user: it needs only read+write on the file itself; the test and
 *   reload commands bring their own `sudo -n` when Nginx belongs to root.
 * - `nginx -s reload` only signals the master and returns at once; until the master has started
 *   new workers, the old ones take new requests under the old upstream list. The barrier: every
 *   worker that existed before the reload has exited or retitled itself "shutting down"; their
 *   pids are printed ("@old 12 13") so the drain can wait for them to exit. A change that only
 *   puts servers back needs less: it is in force once one new worker runs ("started"), since
 *   that worker sends them requests; the old ones, 100 ms from retiring, only lack them.
 */
export const APPLY_SCRIPT = withFunctions(scriptFile(import.meta.url, "apply.sh"), UPTIME_FUNCTION);

/**
 * $1 milliseconds to wait at most, $2 the servers' addresses as /proc/net/tcp writes them
 * (procNetTcpAddress; space-separated; a server that is not an IPv4 literal has none: its sockets
 * cannot be counted), $3… pids of the Nginx workers retired by the drain's reload. Polls every
 * 20 ms on the balancer host itself, so the wait ends within one poll of the last connection
 * closing whatever the SSH round trip costs, and one call serves a whole batch (one SSH channel,
 * not one per server: sshd allows 10 per connection by default). Prints "workers=N ADDR=N …":
 * retired workers still running, and per address the established connections from this host to
 * it (only the remote-address column is matched, so the server side of a loopback connection is
 * not counted). All 0: drained. Also, in centiseconds since the wait began (from /proc/uptime),
 * when the connections first were all closed ("closed=N") and when the last retired worker had
 * exited ("exited=N", only when there were any); each is left out if that did not happen.
 */
export const WAIT_DRAINED_SCRIPT = withFunctions(
  scriptFile(import.meta.url, "wait-drained.sh"),
  UPTIME_FUNCTION,
);

export interface WaitDrainedOutput {
  /** Retired workers still running. */
  workers: number;
  /** Established connections per address (procNetTcpAddress). */
  open: Map<string, number>;
  /** Milliseconds into the wait when every connection was closed, and when the last retired worker had exited. */
  closedMs?: number;
  exitedMs?: number;
}

/** WAIT_DRAINED_SCRIPT's output: connections still open per address, and retired workers alive. */
export function parseWaitDrained(stdout: string): WaitDrainedOutput {
  const open = new Map<string, number>();
  const result: WaitDrainedOutput = { workers: Number.NaN, open };
  for (const pair of stdout.trim().split(/\s+/)) {
    const [key, value] = pair.split("=");
    if (key === "workers") result.workers = Number(value);
    else if (key === "closed") result.closedMs = Number(value) * 10;
    else if (key === "exited") result.exitedMs = Number(value) * 10;
    else if (key && value !== undefined) open.set(key, Number(value));
  }
  if (!Number.isInteger(result.workers)) throw new Error(`the drain wait printed "${stdout.trim()}"`);
  return result;
}

/**
 * What a drain waited for, for the drain step's line: the wait for retired workers is Nginx's
 * own cost (docs/balancers.md), and under load it is often most of the drain. Times count from
 * the start of the batch's wait (just after the reload is in force), for the batch as a whole;
 * `connections` is undefined for a server whose connections cannot be counted.
 */
export function describeDrainWait(counts: WaitDrainedOutput, connections: number | undefined): string {
  const parts: string[] = [];
  if (connections === undefined) parts.push("its connections not counted (not an IPv4 address)");
  else if (connections > 0) parts.push(`${connections} connection(s) to it still open`);
  else if (counts.closedMs !== undefined)
    parts.push(`in-flight requests done in ${seconds(counts.closedMs)}`);
  if (counts.workers > 0)
    parts.push(
      `${counts.workers} Nginx worker(s) retired by the reload still running (they serve client connections opened before it: long requests, or connections that have not sent their request yet)`,
    );
  else if (counts.exitedMs !== undefined && counts.exitedMs > (counts.closedMs ?? 0))
    parts.push(`the Nginx workers retired by the reload gone in ${seconds(counts.exitedMs)}`);
  return parts.join(", ");
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}
