import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readlink, realpath, rm, symlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { SandboxError } from "./errors.js";

/**
 * Where a sandbox's state really lives. The directory the user names (`.sandbox` in the checkout)
 * is a symlink to it, so every path nexus reads through it keeps working, while the state itself
 * sits where the sandbox's own users reach it: a checkout in /root (mode 700), in a closed home or
 * under a path with spaces cannot hold sshd's and Nginx's files for the deploy user
 * (nexus-deploy). Nothing in the checkout's parents is opened to anyone.
 *
 * The name holds the uid (another user's state is never taken for ours) and a hash of the named
 * directory (one state per checkout and name: `.sandbox`, `.sandbox-test-4`...).
 */
export const DEFAULT_STATE_ROOT = "/var/tmp";

export function stateDirFor(namedDir: string, stateRoot = DEFAULT_STATE_ROOT): string {
  const tag = createHash("sha256").update(resolve(namedDir)).digest("hex").slice(0, 12);
  return join(stateRoot, `nexus-sandbox-${process.getuid?.() ?? 0}-${tag}`);
}

/**
 * The state directory behind `namedDir` as it is now: the link's target; else, when the link is
 * gone, the state dir it would point at if that is there and ours; else `namedDir` itself.
 *
 * Why the second: a fresh clone at the same path (CI reusing a machine, `rm -rf` and clone again)
 * has no link, yet its state dir, with the old hosts' homes, releases and maybe running daemons,
 * is still in /var/tmp and `sandbox up` would take it over. Down and purge must find it.
 */
export async function currentStateDir(namedDir: string, stateRoot = DEFAULT_STATE_ROOT): Promise<string> {
  const dir = resolve(namedDir);
  const linked = await realpath(dir).catch(() => undefined);
  if (linked !== undefined) return linked;
  const orphan = stateDirFor(dir, stateRoot);
  return (await isOwnDirectory(orphan)) ? orphan : dir;
}

async function isOwnDirectory(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  const uid = process.getuid?.();
  return info?.isDirectory() === true && (uid === undefined || info.uid === uid);
}

const SANDBOX_MARKERS = ["sandbox.json", "hosts", "client", "known_hosts"];

export type LinkPlan =
  /** The link is there and points at the state dir. */
  | { kind: "ok" }
  /** Nothing there yet. */
  | { kind: "create" }
  /** A link to another place, or a sandbox dir of the layout before this one: stop it, then replace it. */
  | { kind: "replace"; what: "link" | "sandbox dir" | "empty dir" };

/** What to do with `namedDir` so that it links to `stateDir`; throws when it holds something else. */
export async function planLink(namedDir: string, stateDir: string): Promise<LinkPlan> {
  const info = await lstat(namedDir).catch(() => undefined);
  if (!info) return { kind: "create" };
  if (info.isSymbolicLink()) {
    return (await readlink(namedDir)) === stateDir ? { kind: "ok" } : { kind: "replace", what: "link" };
  }
  if (info.isDirectory()) {
    const entries = await readdir(namedDir);
    if (entries.length === 0) return { kind: "replace", what: "empty dir" };
    if (entries.some((e) => SANDBOX_MARKERS.includes(e))) return { kind: "replace", what: "sandbox dir" };
  }
  throw new SandboxError(
    `${namedDir} exists and is not a sandbox: remove it or name another directory with --dir`,
  );
}

/** Creates the state dir (0755, ours, not writable by others) or checks the one that is there. */
export async function ensureStateDir(stateDir: string): Promise<void> {
  await mkdir(dirname(stateDir), { recursive: true });
  await mkdir(stateDir, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  const info = await lstat(stateDir);
  const uid = process.getuid?.();
  // /var/tmp is writable by everyone: a directory someone else made (or a link) there is refused.
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
    throw new SandboxError(
      `${stateDir} is not a directory of yours closed to writes by others (someone else made it?): remove it and start the sandbox again`,
    );
  }
}

/** Points `namedDir` at `stateDir`; `replace` is what planLink said was there (already stopped). */
export async function linkStateDir(namedDir: string, stateDir: string, plan: LinkPlan): Promise<void> {
  if (plan.kind === "ok") return;
  if (plan.kind === "replace") await rm(namedDir, { recursive: true, force: true });
  await mkdir(dirname(namedDir), { recursive: true });
  await symlink(stateDir, namedDir);
}
