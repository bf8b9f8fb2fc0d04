import path from "node:path/posix";
import type { PackageManager } from "../artifact/package-manager.js";
import { stdoutOrThrow } from "../ssh/errors.js";
import { assertReleaseId, type Layout } from "./layout.js";
import type { RemoteOp } from "./op.js";
import { script } from "./op.js";
import { cmd } from "./quote.js";
import { scriptFile, withFunctions, withProgram } from "./script-file.js";
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
export const EXTRACT_SCRIPT = withFunctions(scriptFile(import.meta.url, "extract.sh"), SHA256_FUNCTION);

export function extract(l: Layout, archive: string, id: string, sha256: string): RemoteOp<void> {
  assertReleaseId(id);
  return {
    what: "extracting the release",
    command: script(EXTRACT_SCRIPT, archive, l.release(id), sha256, `${l.staged}/${id}`),
    parse: (result, server) => void stdoutOrThrow(server, "extracting the release", result),
  };
}

export interface InstallOutcome {
  result: "reused" | "installed" | "skipped";
  /** Why it installed afresh: "Node ABI changed (115 → 127): native modules must be rebuilt". */
  why?: string;
  /** What else the stage line should say (a pinned version the server cannot run). */
  notes: string[];
}

/**
 * $1 the new release, $2 `current`, $3 the package manager, $4 the version the app pins (or ""),
 * $5 its lockfile (or ""), $6 the workspace package's directory (app.workspace, or ""), $7 the
 * workspace packages shipped, one per line (or ""), then the install's arguments. install.cjs
 * hard-links the current release's node_modules (the root's and each workspace package's) when
 * the reuse key (lockfile, package.json, package manager and version, the workspace and its
 * packages' manifests, the server's Node ABI, platform, arch) is unchanged (releases are never
 * modified after activation, so sharing inodes is safe), else installs from the lockfile.
 */
export const INSTALL_SCRIPT = withProgram(
  scriptFile(import.meta.url, "install.sh"),
  scriptFile(import.meta.url, "install.cjs"),
);

export function install(
  l: Layout,
  id: string,
  manager: PackageManager | undefined,
): RemoteOp<InstallOutcome> {
  assertReleaseId(id);
  const m = manager ?? { name: "npm", args: ["install", "--omit=dev"] };
  return {
    what: "installing dependencies",
    command: script(
      INSTALL_SCRIPT,
      l.release(id),
      l.current,
      m.name,
      manager?.pinned ?? "",
      manager?.lockfile ?? "",
      manager?.workspace?.dir ?? "",
      (manager?.workspace?.dirs ?? []).join("\n"),
      ...m.args,
    ),
    parse: (result, server) => parseInstall(stdoutOrThrow(server, "installing dependencies", result)),
  };
}

export function parseInstall(stdout: string): InstallOutcome {
  const lines = stdout.split("\n");
  const notes = lines.filter((line) => line.startsWith("@note ")).map((line) => line.slice(6));
  if (lines.includes("@skipped")) return { result: "skipped", notes };
  if (lines.includes("@reused")) return { result: "reused", notes };
  const installed = lines.find((line) => line.startsWith("@installed"));
  const why = installed?.slice("@installed".length).trim();
  return { result: "installed", ...(why ? { why } : {}), notes };
}

/** $1 a file: written from stdin with mode 0600 (process files and journals may carry secrets). */
export const WRITE_PRIVATE_SCRIPT = scriptFile(import.meta.url, "write-private.sh");

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

/**
 * $1 a release directory. Stops the login's processes working in it (by their cwd in /proc; a
 * system without /proc has none to find): what an attempt cut off by a dropped connection left
 * running (no pty, so no SIGHUP), an `npm ci` that would keep writing into the release the retry
 * extracts afresh. SIGTERM, then SIGKILL after 5 s.
 */
export const STOP_STRAYS_SCRIPT = scriptFile(import.meta.url, "stop-strays.sh");

export function stopStrays(l: Layout, id: string): RemoteOp<boolean> {
  assertReleaseId(id);
  return {
    what: "stopping what an earlier attempt left running",
    command: script(STOP_STRAYS_SCRIPT, l.release(id)),
    parse: (result) => result.stdout.includes("@stopped"),
  };
}

/** Removes releases (their directory, partial extraction, process file and failed mark). */
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

/** $1 a file: copied beside it as `$1.prev` (0600), or a stale `.prev` removed when there is none. */
export const KEEP_PRIVATE_SCRIPT = scriptFile(import.meta.url, "keep-private.sh");

/**
 * Keeps a private file (a process file, before it is rewritten) beside it as `<file>.prev`, on
 * the server: it holds the env's secrets, some perhaps no longer in the config (so `--verbose`
 * could not mask them), and none of it comes back to nexus. True when there was a file.
 */
export function keepPrivateFile(file: string, what: string): RemoteOp<boolean> {
  return {
    what,
    command: script(KEEP_PRIVATE_SCRIPT, file),
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
