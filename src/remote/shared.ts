import { NexusError } from "../errors.js";
import { stdoutOrThrow } from "../ssh/errors.js";
import { REMOTE_EXIT } from "./exit-codes.js";
import { assertReleaseId, type Layout } from "./layout.js";
import { type RemoteOp, script } from "./op.js";
import { scriptFile } from "./script-file.js";

/**
 * Files and directories that outlive releases (Capistrano's linked_files / linked_dirs): they live
 * in <deployPath>/shared/ and each release gets a symlink to them at staging.
 */
export interface SharedPaths {
  files: readonly string[];
  dirs: readonly string[];
}

/** Entries as positional parameters: "f:<path>" for a file, "d:<path>" for a directory. */
function entries(shared: SharedPaths): string[] {
  return [...shared.files.map((p) => `f:${p}`), ...shared.dirs.map((p) => `d:${p}`)];
}

/** A shared path that cannot be linked without acting through a symlink in the release. */
export class SharedPathUnsafeError extends NexusError {
  constructor(
    readonly server: string,
    readonly reasons: string[],
  ) {
    super(
      `${server}: shared paths not linked, nothing removed: ${reasons.join("; ")} (a shared path must not lie under a symlink the artifact ships: remove that link from the app, or share its target instead)`,
    );
  }
}

export class SharedFileMissingError extends NexusError {
  constructor(
    readonly server: string,
    readonly missing: string[],
    shared: string,
  ) {
    super(
      `${server}: shared file(s) missing: ${missing.map((m) => `${shared}/${m}`).join(", ")} (create them before deploying; shared.files are never created by nexus)`,
    );
  }
}

/**
 * $1 the shared directory, $2.. entries. Prints "@missing <path>" for each shared file that is
 * not there (a dangling symlink counts as missing); creates nothing.
 */
export const SHARED_CHECK_SCRIPT = scriptFile(import.meta.url, "shared-check.sh");

export function checkShared(l: Layout, shared: SharedPaths): RemoteOp<string[]> {
  return {
    what: "checking shared files",
    command: script(SHARED_CHECK_SCRIPT, l.shared, ...entries(shared)),
    parse: (result, server) =>
      stdoutOrThrow(server, "checking shared files", result)
        .split("\n")
        .filter((line) => line.startsWith("@missing "))
        .map((line) => line.slice("@missing ".length)),
  };
}

/**
 * $1 the shared directory, $2 the release directory, $3.. entries. Shared directories are created
 * when missing; a missing shared file stops staging. Whatever the artifact holds at a shared path
 * is removed and replaced by the link (the shared copy wins: releases never overwrite shared
 * data), and "@replaced <path>" says so. Links are absolute, so that they survive `current`.
 *
 * Nothing is removed through a symlink: a target whose parent inside the release is a symlink
 * (the artifact's `public -> data`, with `data` itself linked to shared/) would have `rm -rf`
 * delete shared data. Every target is checked before anything is removed: a parent that is a
 * symlink, or a parent that resolves outside the release or into shared/, refuses the whole
 * linking (exit 69, REMOTE_EXIT.sharedUnsafe; "@unsafe <path>: <why>" on stderr).
 */
export const SHARED_LINK_SCRIPT = scriptFile(import.meta.url, "shared-link.sh");

export function linkShared(l: Layout, id: string, shared: SharedPaths): RemoteOp<{ replaced: string[] }> {
  assertReleaseId(id);
  return {
    what: "linking shared files",
    command: script(SHARED_LINK_SCRIPT, l.shared, l.app(id), ...entries(shared)),
    parse: (result, server) => {
      if (result.code === REMOTE_EXIT.sharedUnsafe) {
        const reasons = result.stderr
          .split("\n")
          .filter((line) => line.startsWith("@unsafe "))
          .map((line) => line.slice("@unsafe ".length));
        throw new SharedPathUnsafeError(server, reasons);
      }
      if (result.code === REMOTE_EXIT.sharedMissing) {
        const missing = /missing in [^:]*:(.*)$/m.exec(result.stderr)?.[1]?.trim().split(" ") ?? [];
        throw new SharedFileMissingError(server, missing, l.shared);
      }
      const out = stdoutOrThrow(server, "linking shared files", result);
      return {
        replaced: out
          .split("\n")
          .filter((line) => line.startsWith("@replaced "))
          .map((line) => line.slice("@replaced ".length)),
      };
    },
  };
}
