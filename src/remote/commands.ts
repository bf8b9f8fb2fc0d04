import path from "node:path/posix";
import type { Layout } from "./layout.js";
import { cmd, shq } from "./quote.js";

/**
 * Commands as data: each function returns the shell text to run on a server, with every
 * interpolated value quoted. Nothing here does I/O; src/ssh runs the strings.
 */

export function prepare(l: Layout): string {
  return cmd(
    "mkdir",
    "-p",
    l.releases,
    l.shared,
    l.incoming,
    path.dirname(l.ecosystem("x")),
    `${l.state}/failed`,
  );
}

/** Prints "@current", "@release", "@lock" and "@journal" lines describing a server's deploy state. */
export function inspect(l: Layout): string {
  return [
    `if [ ! -d ${shq(l.base)} ]; then echo @missing; exit 0; fi`,
    `cd ${shq(l.base)}`,
    `printf '@current %s\\n' "$(readlink current 2>/dev/null)"`,
    // Release directories are created by a rename when staging ends: their mtime orders them.
    `for d in releases/*; do [ -d "$d" ] || continue; case "$d" in *.partial) continue;; esac; id=\${d#releases/}; t=$(stat -c %Y "$d" 2>/dev/null || echo 0); if [ -e ".nexus/failed/$id" ]; then printf '@release %s failed %s\\n' "$id" "$t"; else printf '@release %s ok %s\\n' "$id" "$t"; fi; done`,
    `if [ -f .nexus/lock ]; then printf '@lock %s\\n' "$(head -c 4096 .nexus/lock | tr '\\n' ' ')"; fi`,
    `if [ -f .nexus/journal.json ]; then printf '@journal %s\\n' "$(head -c 4096 .nexus/journal.json | tr '\\n' ' ')"; fi`,
  ].join("\n");
}

/** Takes the lock atomically (noclobber is O_EXCL); prints @acquired, or @held and the holder. */
export function lockAcquire(l: Layout, holder: string): string {
  return [
    cmd("mkdir", "-p", l.state),
    `if (set -C; printf '%s\\n' ${shq(holder)} > ${shq(l.lock)}) 2>/dev/null; then echo @acquired; else printf '@held %s\\n' "$(head -c 4096 ${shq(l.lock)} | tr '\\n' ' ')"; fi`,
  ].join(" && ");
}

/** Removes the lock only if it still holds our token. */
export function lockRelease(l: Layout, token: string): string {
  return `if grep -qF ${shq(token)} ${shq(l.lock)} 2>/dev/null; then rm -f ${shq(l.lock)}; fi`;
}

export function removeJournal(l: Layout): string {
  return cmd("rm", "-f", l.journal);
}

export function lockBreak(l: Layout): string {
  return cmd("rm", "-f", l.lock);
}

/** Prints the sha256 of a file (sha256sum, else shasum, else node). */
export function sha256Of(file: string): string {
  const q = shq(file);
  return [
    `if command -v sha256sum >/dev/null 2>&1; then sha256sum ${q} | cut -d' ' -f1`,
    `elif command -v shasum >/dev/null 2>&1; then shasum -a 256 ${q} | cut -d' ' -f1`,
    `else node -e 'const h=require("crypto").createHash("sha256");require("fs").createReadStream(process.argv[1]).on("data",d=>h.update(d)).on("end",()=>console.log(h.digest("hex")))' ${q}; fi`,
  ].join("; ");
}

/** Verifies the artifact, extracts it into a fresh release directory, and removes the archive. */
export function extract(l: Layout, archive: string, id: string, sha256: string): string {
  const release = l.release(id);
  const tmp = `${release}.partial`;
  return [
    "set -e",
    `actual=$(${sha256Of(archive)})`,
    `if [ "$actual" != ${shq(sha256)} ]; then echo "checksum mismatch: expected ${sha256}, got $actual" >&2; rm -f ${shq(archive)}; exit 65; fi`,
    `if [ -e ${shq(release)} ]; then echo ${shq(`release ${id} already exists on this server`)} >&2; exit 66; fi`,
    // Refuse absolute and ../ member names outright (GNU tar would strip or skip them).
    `escaping=$(tar -tzf ${shq(archive)} | awk '/^\\// || /(^|\\/)\\.\\.(\\/|$)/' | head -n 3)`,
    `if [ -n "$escaping" ]; then echo "refused: the artifact has entries outside the release: $escaping" >&2; rm -f ${shq(archive)}; exit 67; fi`,
    cmd("rm", "-rf", tmp),
    cmd("mkdir", "-p", tmp),
    // GNU tar refuses absolute and ../ member names by default; --no-same-owner keeps files ours.
    `tar -xzf ${shq(archive)} -C ${shq(tmp)} --no-same-owner --no-same-permissions`,
    // A symlink may not lead out of the release (GNU tar already refuses writes through one).
    `outside=$(find ${shq(tmp)} -type l -exec readlink -f {} \\; | awk -v t=${shq(tmp)} 'index($0, t "/") != 1 && $0 != t')`,
    `if [ -n "$outside" ]; then echo "refused: the artifact holds a symlink out of the release ($outside)" >&2; exit 67; fi`,
    cmd("mv", tmp, release),
    cmd("rm", "-f", archive),
  ].join("\n");
}

/**
 * Installs production dependencies. When package-lock.json is identical to the current
 * release's, its node_modules is hard-linked instead (releases are never modified after
 * activation, so sharing inodes is safe); otherwise npm ci (or npm install without a lock).
 */
export function install(l: Layout, id: string): string {
  const release = shq(l.release(id));
  const current = shq(l.current);
  return [
    "set -e",
    `cd ${release}`,
    `if [ ! -f package.json ]; then echo @skipped; exit 0; fi`,
    `if [ -f package-lock.json ] && [ -d ${current}/node_modules ] && cmp -s package-lock.json ${current}/package-lock.json && cmp -s package.json ${current}/package.json; then cp -al ${current}/node_modules node_modules && echo @reused; exit 0; fi`,
    "if [ -f package-lock.json ]; then npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error; else npm install --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error; fi",
    "echo @installed",
  ].join("\n");
}

/** Writes a file from the command's stdin with mode 0600 (the PM2 file carries env secrets). */
export function writePrivateFile(file: string): string {
  return `umask 077 && mkdir -p ${shq(path.dirname(file))} && cat > ${shq(`${file}.tmp`)} && mv -f ${shq(`${file}.tmp`)} ${shq(file)}`;
}

/** Points `current` at a release atomically: a new symlink renamed over the old one. */
export function activate(l: Layout, id: string): string {
  const tmp = `${l.current}.tmp-${id}`;
  return `${cmd("ln", "-sfn", `releases/${id}`, tmp)} && ${cmd("mv", "-Tf", tmp, l.current)}`;
}

export interface Pm2App {
  name: string;
  script: string;
  cwd: string;
  env: Record<string, string>;
  killTimeout: number;
  /** Log files, in the deploy path's shared/logs so they outlive releases and are easy to find. */
  outFile: string;
  errorFile: string;
}

/**
 * PM2 pins the physical cwd at start and restart does not pick up a new script path
 * (Unitech/pm2#1663, #5939), so the app is deleted and started afresh from the release's own
 * ecosystem file, which names the release directory explicitly.
 */
export function ecosystemFile(app: Pm2App): string {
  return `${JSON.stringify(
    {
      apps: [
        {
          name: app.name,
          script: app.script,
          cwd: app.cwd,
          env: app.env,
          kill_timeout: app.killTimeout,
          // Treat an app that dies within 2s of start as crashed, so a crash loop shows as restarts.
          min_uptime: 2000,
          max_restarts: 10,
          autorestart: true,
          merge_logs: true,
          out_file: app.outFile,
          error_file: app.errorFile,
        },
      ],
    },
    null,
    2,
  )}\n`;
}

export function pm2Stop(name: string): string {
  return `pm2 delete ${shq(name)} >/dev/null 2>&1 || true`;
}

/** PM2's process list as JSON; its banner and daemon messages go to stdout too, so the caller keeps the JSON line. */
export function pm2List(): string {
  return "PM2_SILENT=true pm2 jlist";
}

export function pm2Save(): string {
  return "pm2 save --force >/dev/null 2>&1 || true";
}

/** The last lines of the app's error log. */
export function tailFile(file: string, lines = 20): string {
  return `tail -n ${Number(lines)} ${shq(file)} 2>/dev/null || true`;
}

export function appendHistory(l: Layout, entry: Record<string, unknown>): string {
  return `printf '%s\\n' ${shq(JSON.stringify(entry))} >> ${shq(l.history)}`;
}

export function markFailed(l: Layout, id: string): string {
  return cmd("touch", `${l.state}/failed/${id}`);
}

export function removeRelease(l: Layout, id: string): string {
  return cmd(
    "rm",
    "-rf",
    l.release(id),
    `${l.release(id)}.partial`,
    l.ecosystem(id),
    `${l.state}/failed/${id}`,
  );
}

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

export function readHistory(l: Layout, lines = 500): string {
  return `tail -n ${Number(lines)} ${shq(l.history)} 2>/dev/null || true`;
}
