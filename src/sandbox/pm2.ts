import { createHash } from "node:crypto";
import { access, constants, cp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { SandboxError } from "./errors.js";
import { childPids, environ, isAlive, readPidFile, stopPid } from "./processes.js";

/** The nexus checkout whose node_modules/.bin provides pm2 to the sandbox hosts. */
export async function findProjectRoot(): Promise<string> {
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      try {
        await access(join(dir, "node_modules", ".bin", "pm2"), constants.X_OK);
        return dir;
      } catch {}
      if (dirname(dir) === dir) break;
    }
  }
  throw new SandboxError(
    "pm2 not found in node_modules/.bin: run `npm install` in the nexus project (pm2 is a devDependency)",
  );
}

interface Package {
  dir: string;
  version: string;
}

async function readPackage(dir: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Node's lookup: `node_modules/<name>` in the package's directory, then in each parent up to the root. */
async function resolvePackage(name: string, from: string, root: string): Promise<string | undefined> {
  for (let dir = from; ; dir = dirname(dir)) {
    if (basename(dir) !== "node_modules") {
      const candidate = join(dir, "node_modules", name);
      if (await readPackage(candidate)) return candidate;
    }
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

/** pm2 and everything it loads (dependencies and installed optional ones), as installed under `root`. */
export async function pm2Closure(root: string): Promise<Package[]> {
  const found = new Map<string, Package>();
  const visit = async (dir: string): Promise<void> => {
    if (found.has(dir)) return;
    const pkg = await readPackage(dir);
    if (!pkg) return;
    found.set(dir, { dir, version: String(pkg.version) });
    const names = Object.keys({
      ...(pkg.dependencies as object | undefined),
      ...(pkg.optionalDependencies as object | undefined),
    });
    for (const name of names) {
      const resolved = await resolvePackage(name, dir, root);
      if (resolved) await visit(resolved);
    }
  };
  await visit(join(root, "node_modules", "pm2"));
  return [...found.values()].sort((a, b) => (a.dir < b.dir ? -1 : 1));
}

/**
 * The sandbox hosts' own PM2: a copy of the project's pm2 and its dependencies in the state dir
 * (`<state>/pm2/node_modules/...`, the same layout, so Node resolves them the same way) and
 * `<state>/bin/pm2`, on the hosts' PATH. The deploy user must reach it, and the project's
 * node_modules may sit in a home closed to others; a PM2 installed on the machine (/usr/bin/pm2)
 * is never what the hosts run. The copy is skipped when the same versions are already there.
 */
export async function installSandboxPm2(projectRoot: string, stateDir: string): Promise<string> {
  const packages = await pm2Closure(projectRoot);
  const target = join(stateDir, "pm2");
  const bin = join(stateDir, "bin", "pm2");
  const stamp = createHash("sha256")
    .update(packages.map((p) => `${relative(projectRoot, p.dir)}@${p.version}`).join("\n"))
    .digest("hex");
  const stampFile = join(target, ".nexus-stamp");
  if ((await readFile(stampFile, "utf8").catch(() => "")) !== stamp) {
    await rm(target, { recursive: true, force: true });
    for (const pkg of packages) {
      const nested = join(pkg.dir, "node_modules");
      await cp(pkg.dir, join(target, relative(projectRoot, pkg.dir)), {
        recursive: true,
        // Nested packages are copied on their own when pm2 needs them.
        filter: (source) => source !== nested,
      });
    }
    // Readable by the deploy user whatever the umask of whoever installed node_modules.
    await execa("chmod", ["-R", "go+rX,go-w", target], { stdin: "ignore" });
    await writeFile(stampFile, stamp);
  }
  await mkdir(dirname(bin), { recursive: true, mode: 0o755 });
  await rm(bin, { force: true });
  await symlink(relative(dirname(bin), join(target, "node_modules", "pm2", "bin", "pm2")), bin);
  return bin;
}

/** Package managers the hosts get when the project has them (devDependencies): name → its bin file. */
const PACKAGE_MANAGER_BINS: Record<string, string> = { pnpm: "bin/pnpm.cjs", yarn: "bin/yarn.js" };

/**
 * pnpm and Yarn for the sandbox hosts, as PM2 (a copy in the state dir, `<state>/bin/<name>` on
 * their PATH), when the project has them: an app with a pnpm-lock.yaml or a yarn.lock installs on
 * the sandbox with no download. Both are single packages with no dependencies of their own.
 */
export async function installSandboxPackageManagers(projectRoot: string, stateDir: string): Promise<void> {
  for (const [name, binFile] of Object.entries(PACKAGE_MANAGER_BINS)) {
    const source = join(projectRoot, "node_modules", name);
    const version = await readFile(join(source, "package.json"), "utf8")
      .then((text) => String((JSON.parse(text) as { version?: unknown }).version))
      .catch(() => undefined);
    if (!version) continue;
    const target = join(stateDir, "package-managers", name);
    const stampFile = join(target, ".nexus-stamp");
    if ((await readFile(stampFile, "utf8").catch(() => "")) !== version) {
      await rm(target, { recursive: true, force: true });
      await cp(source, target, { recursive: true });
      await execa("chmod", ["-R", "go+rX,go-w", target], { stdin: "ignore" });
      await writeFile(stampFile, version);
    }
    const bin = join(stateDir, "bin", name);
    await mkdir(dirname(bin), { recursive: true, mode: 0o755 });
    await rm(bin, { force: true });
    await symlink(relative(dirname(bin), join(target, binFile)), bin);
  }
}

/** The daemon's environment names its PM2_HOME, which tells our daemon apart from a recycled pid. */
export async function runningPm2(pm2Home: string): Promise<number | undefined> {
  const pid = await readPidFile(join(pm2Home, "pm2.pid"));
  if (pid === undefined || !(await isAlive(pid))) return undefined;
  return (await environ(pid)).includes(`PM2_HOME=${pm2Home}`) ? pid : undefined;
}

/**
 * The daemon's SIGTERM does what `pm2 kill` does (it stops each app with SIGINT, waits up to its
 * kill_timeout, then exits) without a PM2 CLI started per host: ~0.6 s of CPU each, a minute for a
 * 50-host sandbox on two cores. Whatever survives it gets signalled.
 */
export async function stopPm2(pm2Home: string): Promise<void> {
  const pid = await runningPm2(pm2Home);
  if (pid === undefined) return;
  const apps = await childPids(pid);
  await stopPid(pid, "SIGTERM", 15_000);
  await Promise.all(apps.map((app) => stopPid(app)));
}
