import { cmd, shq } from "../remote/quote.js";

/** Shell text the Nginx driver runs on the balancer host. Nothing here does I/O. */

export function readFile(file: string): string {
  return cmd("cat", file);
}

/**
 * Replaces a file's content with stdin, keeping a backup beside it; `cat >` keeps the
 * file's inode, owner and mode.
 */
export function replaceFileFromStdin(file: string, backup: string): string {
  return `${cmd("cp", "-p", file, backup)} && cat > ${shq(file)}`;
}

export function restoreFile(file: string, backup: string): string {
  return `cat ${shq(backup)} > ${shq(file)}`;
}

/**
 * Runs the reload command, then waits until the new configuration is really in force:
 * `nginx -s reload` only signals the master and returns at once, and until the master has
 * started new workers the old ones keep taking new requests under the old upstream list.
 * The barrier: every worker that existed before the reload has exited or retitled itself
 * "shutting down"; prints those workers' pids ("@old 12 13"). Exit 70 when the pid file cannot be read (no barrier possible), 71 on timeout.
 */
export function reloadAndConfirm(reloadCommand: string, pidFile: string, timeoutMs = 5000): string {
  // The master's children from /proc (Linux 3.5+), else pgrep; only worker processes count.
  const workers = `for p in $(cat /proc/$master/task/$master/children 2>/dev/null || pgrep -P "$master"); do tr '\\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'worker process' && printf '%s ' "$p"; done`;
  return [
    `master=$(cat ${shq(pidFile)} 2>/dev/null) || master=""`,
    `if [ -n "$master" ]; then old=$(${workers}); fi`,
    `{ ${reloadCommand}
} || exit $?`,
    `if [ -z "$master" ]; then exit 70; fi`,
    `i=0; while [ "$i" -lt ${Math.ceil(timeoutMs / 50)} ]; do`,
    "  pending=0",
    `  for p in $old; do if [ -r "/proc/$p/cmdline" ] && ! tr '\\0' ' ' < "/proc/$p/cmdline" | grep -q 'shutting down'; then pending=1; fi; done`,
    `  if [ "$pending" = 0 ]; then echo "@old $old"; exit 0; fi`,
    "  sleep 0.05; i=$((i + 1))",
    "done",
    "exit 71",
  ].join("\n");
}

/**
 * Counts established TCP connections from this host to an IPv4 address:port, read from
 * /proc/net/tcp so it needs neither ss nor netstat. Only the remote-address column is matched,
 * so the server side of a loopback connection is not counted.
 */
export function countConnections(address: string): string | undefined {
  const hex = procNetTcpAddress(address);
  if (!hex) return undefined;
  return `awk 'NR > 1 && $3 == "${hex}" && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp`;
}

/** Prints how many of these pids are still running (old Nginx workers finishing their requests). */
export function countAlive(pids: readonly number[]): string {
  const list = pids.filter((p) => Number.isInteger(p) && p > 0).join(" ");
  return `n=0; for p in ${list}; do [ -d /proc/$p ] && n=$((n + 1)); done; echo $n`;
}

export function procNetTcpAddress(address: string): string | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(address);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const port = Number(match[5]);
  if (octets.some((o) => o > 255) || port > 65535) return undefined;
  const ip = octets
    .reverse()
    .map((o) => o.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
  return `${ip}:${port.toString(16).padStart(4, "0").toUpperCase()}`;
}
