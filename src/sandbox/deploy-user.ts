import { createHash, randomBytes } from "node:crypto";
import { chown, lstat, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { SandboxError } from "./errors.js";
import { findBinary } from "./processes.js";

/**
 * The "real server" mode: each app host is logged into as this unprivileged user, Nginx runs as
 * root with root-owned files, and a sudoers rule lets the user run exactly the Nginx test and
 * reload commands. The upstream file is root-owned, group-writable by the user's group, in a
 * directory only root can write (the least privilege nexus needs: it edits the file in place).
 */
export const DEPLOY_USER = "nexus-deploy";

export interface DeployUser {
  name: string;
  uid: number;
  gid: number;
}

async function idOf(name: string, flag: "-u" | "-g"): Promise<number | undefined> {
  const result = await execa("id", [flag, name], { reject: false, stdin: "ignore" });
  const n = Number.parseInt(result.stdout.trim(), 10);
  return result.exitCode === 0 && Number.isInteger(n) ? n : undefined;
}

/** Creates the user (with its own group and a bash login shell) unless it exists. */
export async function ensureDeployUser(name = DEPLOY_USER): Promise<DeployUser> {
  if ((await idOf(name, "-u")) === undefined) {
    const useradd = await findBinary("useradd");
    if (!useradd) throw new SandboxError("useradd not found: install passwd (apt-get install passwd)");
    const result = await execa(
      useradd,
      // Password "*": no password login, yet not "locked" (sshd without PAM refuses locked accounts).
      ["--system", "--user-group", "--create-home", "--shell", "/bin/bash", "--password", "*", name],
      { reject: false, stdin: "ignore", all: true },
    );
    // 9: created meanwhile by another sandbox starting at the same time.
    if (result.exitCode !== 0 && result.exitCode !== 9) {
      throw new SandboxError(`useradd ${name} failed: ${result.all}`);
    }
  }
  const uid = await idOf(name, "-u");
  const gid = await idOf(name, "-g");
  if (uid === undefined || gid === undefined) throw new SandboxError(`cannot read the ids of user ${name}`);
  return { name, uid, gid };
}

/** The user must reach these paths (sandbox dir, the project's pm2, node): every ancestor open to others. */
export async function assertReachableByOthers(paths: string[]): Promise<void> {
  for (const path of paths) {
    for (let dir = path; ; dir = dirname(dir)) {
      const mode = (await stat(dir)).mode;
      if ((mode & 0o001) === 0) {
        throw new SandboxError(
          `${dir} is closed to other users (mode ${(mode & 0o777).toString(8)}), so the sandbox's deploy user ${DEPLOY_USER} cannot reach ${path}: move the checkout, chmod o+x ${dir}, or run the sandbox in the old mode with NEXUS_SANDBOX_LOGIN=self`,
        );
      }
      if (dirname(dir) === dir) break;
    }
  }
}

/** chown -R without following symlinks. */
export async function chownTree(path: string, user: DeployUser): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return;
  if (info.isSymbolicLink()) return;
  if (info.uid !== user.uid || info.gid !== user.gid) await chown(path, user.uid, user.gid);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await chownTree(join(path, entry), user);
  }
}

/** One sudoers file per sandbox dir, so several sandboxes on a machine do not clash. */
export function sudoersPath(sandboxDir: string): string {
  const tag = createHash("sha256").update(sandboxDir).digest("hex").slice(0, 12);
  // sudo skips files in sudoers.d whose name holds a dot.
  return `/etc/sudoers.d/nexus-sandbox-${tag}`;
}

/** sudoers treats these as syntax inside a command's arguments. */
function sudoersArg(arg: string): string {
  return arg.replace(/[\\,:=]/g, (c) => `\\${c}`);
}

export function renderSudoers(user: string, commands: string[][]): string {
  const list = commands.map((argv) => argv.map(sudoersArg).join(" ")).join(", \\\n    ");
  return `# Written by the nexus sandbox; removed by sandbox down. The deploy user may test (-t, -T) and
# reload the sandbox's Nginx as root, without a password, and nothing else.
${user} ALL=(root) NOPASSWD: ${list}
`;
}

export async function installSudoers(sandboxDir: string, content: string): Promise<void> {
  const visudo = await findBinary("visudo");
  if (!visudo || !(await findBinary("sudo"))) {
    throw new SandboxError(
      "sudo not found: install it (apt-get install sudo, or scripts/install-system-deps.sh)",
    );
  }
  const target = sudoersPath(sandboxDir);
  const temp = `${target}.tmp`;
  await writeFile(temp, content, { mode: 0o440 });
  const check = await execa(visudo, ["-c", "-q", "-f", temp], { reject: false, all: true, stdin: "ignore" });
  if (check.exitCode !== 0) {
    await rm(temp, { force: true });
    throw new SandboxError(`the sandbox's sudoers rule does not parse:\n${check.all}\n${content}`);
  }
  await rename(temp, target);
}

export async function removeSudoers(sandboxDir: string): Promise<void> {
  await rm(sudoersPath(sandboxDir), { force: true });
}

/** A random password for the deploy user, kept in `file` (0600), for the passwordLogin hosts. */
export async function setPassword(user: string, file: string): Promise<void> {
  const password = randomBytes(18).toString("base64url");
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, password, { mode: 0o600 });
  const result = await execa("chpasswd", [], { input: `${user}:${password}\n`, reject: false, all: true });
  if (result.exitCode !== 0) throw new SandboxError(`chpasswd failed for ${user}: ${result.all}`);
}

/** Back to "no password" (not locked: key logins keep working). */
export async function lockPassword(user: string): Promise<void> {
  await execa("usermod", ["-p", "*", user], { reject: false, stdin: "ignore" });
}
