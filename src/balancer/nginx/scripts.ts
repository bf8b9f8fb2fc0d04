import { cmd } from "../../remote/quote.js";

/** Shell the Nginx driver runs on the balancer host. Nothing here does I/O. */

export function readFile(file: string): string {
  return cmd("cat", file);
}

/**
 * A centisecond clock for the scripts' waits: /proc/uptime is "12345.67 …"; no arithmetic on
 * its fraction as written (a zero-led "05" would be octal). Without /proc (not Linux), whole
 * seconds from `date`.
 */
const UPTIME_CS = `uptime_cs() {
  if [ -r /proc/uptime ] && read -r up rest < /proc/uptime; then echo $(( \${up%.*} * 100 + 1\${up#*.} - 100 ))
  else echo $(( $(date +%s) * 100 )); fi
}`;

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
export const APPLY_SCRIPT = `file=$1 expected=$2 test_command=$3 reload_command=$4 pid_file=$5 wait=$6 barrier=\${7:-retired}
if [ ! -r "$file" ] || [ ! -w "$file" ]; then
  echo "$(id -un 2>/dev/null || echo this user) cannot read and write $(ls -ld "$file" 2>&1)" >&2
  exit ${APPLY_EXIT.cannotWrite}
fi
# Without flock (not Linux util-linux), the compare-and-swap still catches most overlaps.
if command -v flock >/dev/null 2>&1; then
  exec 9<"$file"
  flock -w "$wait" 9 || { echo "another run has held the lock on the upstream file for \${wait}s" >&2; exit ${APPLY_EXIT.lockTimeout}; }
fi
command -v sha256sum >/dev/null 2>&1 || exit ${APPLY_EXIT.noSha256sum}
current=$(sha256sum < "$file" | cut -c1-64)
if [ "$current" != "$expected" ]; then exit ${APPLY_EXIT.changed}; fi
backup=$(umask 077 && mktemp "\${TMPDIR:-/tmp}/nexus-upstream.XXXXXX") || {
  echo "cannot create a backup file in \${TMPDIR:-/tmp}" >&2
  exit ${APPLY_EXIT.cannotWrite}
}
if ! cat "$file" > "$backup"; then rm -f "$backup"; exit ${APPLY_EXIT.cannotWrite}; fi
restore() {
  if cat "$backup" > "$file"; then rm -f "$backup"; else echo "could not restore the upstream file: its previous content is in $backup" >&2; fi
}
if ! cat > "$file"; then restore; exit ${APPLY_EXIT.cannotWrite}; fi
# 9<&-: a daemon started by these commands must not inherit (and keep) the lock.
if ! test_output=$(sh -c "$test_command" 2>&1 9<&-); then
  restore
  printf '%s\\n' "$test_output" >&2
  exit ${APPLY_EXIT.testFailed}
fi
workers() {
  # The master's children from /proc (Linux 3.5+), else pgrep; only worker processes count.
  for p in $(cat "/proc/$1/task/$1/children" 2>/dev/null || pgrep -P "$1"); do
    tr '\\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'worker process' && printf '%s ' "$p"
  done
}
master=$(cat "$pid_file" 2>/dev/null) || master=""
old=""
if [ -n "$master" ]; then old=$(workers "$master"); fi
if ! reload_output=$(sh -c "$reload_command" 2>&1 9<&-); then
  restore
  printf '%s\\n' "$reload_output" >&2
  exit 1
fi
if [ -n "$reload_output" ]; then printf '%s\\n' "$reload_output"; fi
rm -f "$backup"
if [ -z "$master" ]; then exit ${APPLY_EXIT.reloadUnconfirmed}; fi
# Nginx's master starts the new workers, sleeps 100 ms, then retires the old ones: a fine poll
# ends the wait soon after. With no worker seen before the reload (/proc hidden by hidepid, no
# pgrep), no new one can be told apart either: only the (vacuous) retired barrier applies.
if [ -z "$old" ]; then barrier=retired; fi
${UPTIME_CS}
deadline=$(( $(uptime_cs) + 500 ))
while [ "$(uptime_cs)" -lt "$deadline" ]; do
  pending=0
  if [ "$barrier" = started ]; then
    pending=1
    for p in $(workers "$master"); do
      case " $old " in *" $p "*) ;; *) pending=0 ;; esac
    done
  else
    for p in $old; do
      if [ -r "/proc/$p/cmdline" ] && ! tr '\\0' ' ' < "/proc/$p/cmdline" | grep -q 'shutting down'; then pending=1; fi
    done
  fi
  if [ "$pending" = 0 ]; then echo "@old $old"; exit 0; fi
  sleep 0.01
done
exit ${APPLY_EXIT.reloadTimeout}`;

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
export const WAIT_DRAINED_SCRIPT = `wait_ms=$1 addresses=$2
shift 2
${UPTIME_CS}
began=$(uptime_cs)
deadline=$(( began + wait_ms / 10 ))
closed="" exited=""
while :; do
  counts=$(awk -v list="$addresses" '
    BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) c[a[i]] = 0 }
    NR > 1 && $4 == "01" && ($3 in c) { c[$3]++; total++ }
    END { printf "%d", total; for (k in c) printf " %s=%d", k, c[k] }
  ' /proc/net/tcp)
  workers=0
  for p in "$@"; do
    if [ -d "/proc/$p" ]; then workers=$((workers + 1)); fi
  done
  now=$(uptime_cs)
  if [ -z "$closed" ] && [ "\${counts%% *}" -eq 0 ]; then closed=" closed=$(( now - began ))"; fi
  if [ -z "$exited" ] && [ "$#" -gt 0 ] && [ "$workers" -eq 0 ]; then exited=" exited=$(( now - began ))"; fi
  if [ $(( \${counts%% *} + workers )) -eq 0 ] || [ "$now" -ge "$deadline" ]; then
    echo "workers=$workers$closed$exited \${counts#* }"
    exit 0
  fi
  sleep 0.02
done`;

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
