import path from "node:path/posix";
import { stdoutOrThrow } from "../ssh/errors.js";
import { REMOTE_EXIT } from "./exit-codes.js";
import { assertReleaseId, type Layout } from "./layout.js";
import type { RemoteOp } from "./op.js";
import { script } from "./op.js";
import { cmd } from "./quote.js";
import { SHA256_FUNCTION } from "./sha256.js";

/** Release steps on one server: prepare the layout, extract, install, activate, remove. */

/**
 * Creates the deploy path's directories. `clearIncoming` (staging, under the deploy lock) also
 * removes what an earlier upload left in incoming/ (interrupted, or refused before extracting):
 * each is a whole artifact, and a CI job failing over and over would fill the disk.
 */
export function prepare(l: Layout, options: { clearIncoming?: boolean } = {}): RemoteOp<void> {
  const create = cmd(
    "mkdir",
    "-p",
    l.releases,
    l.shared,
    l.incoming,
    path.dirname(l.ecosystem("x")),
    l.failed,
  );
  const clear = cmd(
    "find",
    l.incoming,
    "-mindepth",
    "1",
    "-maxdepth",
    "1",
    "-exec",
    "rm",
    "-rf",
    "--",
    "{}",
    "+",
  );
  return {
    what: "preparing the deploy path",
    command: options.clearIncoming ? `${create} && ${clear}` : create,
    parse: (result, server) => void stdoutOrThrow(server, "preparing the deploy path", result),
  };
}

/**
 * $1 archive, $2 release directory, $3 expected sha256, $4 the release's staged stamp. Verifies
 * the archive, refuses entries and symlinks that lead out of the release, extracts into
 * "<release>.partial", renames it and writes the stamp (a release directory's own mtime moves
 * whenever something creates a file at its top, which would reorder the releases).
 */
export const EXTRACT_SCRIPT = `set -eu
archive=$1 release=$2 expected=$3 stamp=$4
tmp="$release.partial"
# The archive is spent whatever happens; a refused or failed extraction leaves no partial tree.
trap 'rm -rf "$archive" "$tmp"' EXIT
${SHA256_FUNCTION}
actual=$(sha256 "$archive")
if [ "$actual" != "$expected" ]; then
  echo "checksum mismatch: expected $expected, got $actual" >&2
  exit ${REMOTE_EXIT.checksumMismatch}
fi
if [ -e "$release" ]; then
  echo "release \${release##*/} already exists on this server" >&2
  exit ${REMOTE_EXIT.releaseExists}
fi
# Absolute and ../ member names are refused outright (GNU tar would strip or skip them).
escaping=$(tar -tzf "$archive" | awk '/^\\// || /(^|\\/)\\.\\.(\\/|$)/' | head -n 3)
if [ -n "$escaping" ]; then
  echo "refused: the artifact has entries outside the release: $escaping" >&2
  exit ${REMOTE_EXIT.unsafeArchive}
fi
rm -rf "$tmp"
mkdir -p "$tmp"
tar -xzf "$archive" -C "$tmp" --no-same-owner --no-same-permissions
# Symlinks may not lead out of the release: each is resolved and compared with the canonical
# directory (the deploy path itself may go through a symlink); one that cannot be resolved is refused.
# readlink -m resolves what exists and the rest by name: bin/x -> ../node_modules/y/cli.js is
# inside, though node_modules comes later (busybox has only -f, which needs the parents).
canonical=$(cd "$tmp" && pwd -P)
outside=$(find "$tmp" -type l -exec sh -c '
  c=$1 t=$2; shift 2
  for link in "$@"; do
    target=$(readlink -m "$link" 2>/dev/null || readlink -f "$link") || target=""
    case "$target" in "$c" | "$c"/*) ;; *) printf "%s\\n" "\${link#"$t"/}" ;; esac
  done' nexus "$canonical" "$tmp" {} +)
if [ -n "$outside" ]; then
  echo "refused: the artifact holds a symlink out of the release: $outside" >&2
  exit ${REMOTE_EXIT.unsafeArchive}
fi
mv "$tmp" "$release"
mkdir -p "\${stamp%/*}"
: > "$stamp"`;

export function extract(l: Layout, archive: string, id: string, sha256: string): RemoteOp<void> {
  assertReleaseId(id);
  return {
    what: "extracting the release",
    command: script(EXTRACT_SCRIPT, archive, l.release(id), sha256, `${l.staged}/${id}`),
    parse: (result, server) => void stdoutOrThrow(server, "extracting the release", result),
  };
}

export type InstallOutcome = "reused" | "installed" | "skipped";

/**
 * $1 the new release, $2 `current`. When package.json and package-lock.json are identical to the
 * current release's, its node_modules is hard-linked (releases are never modified after
 * activation, so sharing inodes is safe); otherwise npm ci (npm install without a lock file).
 */
export const INSTALL_SCRIPT = `set -eu
release=$1 current=$2
cd "$release"
if [ ! -f package.json ]; then echo @skipped; exit 0; fi
if [ -f package-lock.json ] && [ -d "$current/node_modules" ] \\
  && cmp -s package-lock.json "$current/package-lock.json" && cmp -s package.json "$current/package.json"; then
  cp -al "$current/node_modules" node_modules
  echo @reused
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error
else
  npm install --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error
fi
echo @installed`;

export function install(l: Layout, id: string): RemoteOp<InstallOutcome> {
  assertReleaseId(id);
  return {
    what: "installing dependencies",
    command: script(INSTALL_SCRIPT, l.release(id), l.current),
    parse: (result, server) => {
      const out = stdoutOrThrow(server, "installing dependencies", result);
      return out.includes("@reused") ? "reused" : out.includes("@skipped") ? "skipped" : "installed";
    },
  };
}

/** $1 a file: written from stdin with mode 0600 (process files and journals may carry secrets). */
export const WRITE_PRIVATE_SCRIPT = `umask 077
mkdir -p "$(dirname "$1")"
cat > "$1.tmp" && mv -f "$1.tmp" "$1"`;

export function writePrivateFile(file: string, content: string, what: string): RemoteOp<void> {
  return {
    what,
    command: script(WRITE_PRIVATE_SCRIPT, file),
    stdin: content,
    parse: (result, server) => void stdoutOrThrow(server, what, result),
  };
}

/** Points `current` at a release atomically: a new symlink renamed over the old one. */
export function activate(l: Layout, id: string): RemoteOp<void> {
  assertReleaseId(id);
  const tmp = `${l.current}.tmp-${id}`;
  return {
    what: "switching current",
    command: `${cmd("ln", "-sfn", `releases/${id}`, tmp)} && ${cmd("mv", "-Tf", tmp, l.current)}`,
    parse: (result, server) => void stdoutOrThrow(server, "switching current", result),
  };
}

export function markFailed(l: Layout, id: string): RemoteOp<void> {
  assertReleaseId(id);
  return {
    what: "marking the release failed",
    command: cmd("touch", `${l.failed}/${id}`),
    parse: (result, server) => void stdoutOrThrow(server, "marking the release failed", result),
  };
}

/** Removes releases (their directory, partial extraction, process file and failed mark). */
/**
 * $1 a release directory. Stops the login's processes working in it (by their cwd in /proc; a
 * system without /proc has none to find): what an attempt cut off by a dropped connection left
 * running (no pty, so no SIGHUP), an `npm ci` that would keep writing into the release the retry
 * extracts afresh. SIGTERM, then SIGKILL after 5 s.
 */
export const STOP_STRAYS_SCRIPT = `release=$1
# /proc shows a cwd with symlinks resolved: so is the path compared with it.
dir=$(cd "\${release%/*}" 2>/dev/null && pwd -P) && release="$dir/\${release##*/}"
# One find for every process (a readlink each would fork hundreds of times); the path's glob
# characters escaped, as -lname reads a pattern.
pattern=$(printf '%s' "$release" | sed 's/[][*?\\]/\\\\&/g')
strays() {
  find /proc/[0-9]*/cwd -maxdepth 0 \\( -lname "$pattern" -o -lname "$pattern/*" \\
    -o -lname "$pattern.partial" -o -lname "$pattern.partial/*" \\) 2>/dev/null | cut -d/ -f3
}
pids=$(strays)
[ -n "$pids" ] || exit 0
# shellcheck disable=SC2086 # one word per pid, digits only
kill $pids 2>/dev/null
i=0
while [ $i -lt 50 ] && [ -n "$(strays)" ]; do sleep 0.1; i=$((i + 1)); done
pids=$(strays)
# shellcheck disable=SC2086 # one word per pid, digits only
[ -z "$pids" ] || kill -9 $pids 2>/dev/null
echo "@stopped"`;

export function stopStrays(l: Layout, id: string): RemoteOp<boolean> {
  assertReleaseId(id);
  return {
    what: "stopping what an earlier attempt left running",
    command: script(STOP_STRAYS_SCRIPT, l.release(id)),
    parse: (result) => result.stdout.includes("@stopped"),
  };
}

export function removeReleases(l: Layout, ids: readonly string[]): RemoteOp<void> {
  for (const id of ids) assertReleaseId(id);
  return {
    what: "removing releases",
    command: cmd(
      "rm",
      "-rf",
      "--",
      ...ids.flatMap((id) => [
        l.release(id),
        `${l.release(id)}.partial`,
        `${l.incoming}/${id}.tar.gz`,
        `${l.incoming}/${id}.tar.gz.part`,
        l.ecosystem(id),
        `${l.ecosystem(id)}.prev`,
        `${l.failed}/${id}`,
        `${l.staged}/${id}`,
      ]),
    ),
    parse: (result, server) => void stdoutOrThrow(server, "removing releases", result),
  };
}

/** The last lines of a file (the app's error log), or nothing. */
export function tailFile(file: string, lines = 20): RemoteOp<string[]> {
  return {
    what: "reading the log",
    command: `tail -n ${Number(lines)} -- ${cmd(file)} 2>/dev/null || true`,
    parse: (result) => result.stdout.split("\n").filter((line) => line.trim() !== ""),
  };
}

/**
 * Keeps a private file (a process file, before it is rewritten) beside it as `<file>.prev`, on
 * the server: it holds the env's secrets, some perhaps no longer in the config (so `--verbose`
 * could not mask them), and none of it comes back to nexus. True when there was a file.
 */
export function keepPrivateFile(file: string, what: string): RemoteOp<boolean> {
  const kept = `${file}.prev`;
  return {
    what,
    command: `if [ -f ${cmd(file)} ]; then (umask 077 && cp -p -- ${cmd(file, kept)}) && echo @kept; else rm -f -- ${cmd(kept)}; fi`,
    parse: (result, server) => stdoutOrThrow(server, what, result).includes("@kept"),
  };
}

/** Puts back what `keepPrivateFile` kept (a copy: a later restore finds it too). */
export function restorePrivateFile(file: string, what: string): RemoteOp<void> {
  return {
    what,
    command: `umask 077 && ${cmd("cp", "-p", "--", `${file}.prev`, `${file}.tmp`)} && ${cmd("mv", "-f", "--", `${file}.tmp`, file)}`,
    parse: (result, server) => void stdoutOrThrow(server, what, result),
  };
}
