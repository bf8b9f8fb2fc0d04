import { access, constants, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
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

/** The daemon's environment names its PM2_HOME, which tells our daemon apart from a recycled pid. */
export async function runningPm2(pm2Home: string): Promise<number | undefined> {
  const pid = await readPidFile(join(pm2Home, "pm2.pid"));
  if (pid === undefined || !(await isAlive(pid))) return undefined;
  return (await environ(pid)).includes(`PM2_HOME=${pm2Home}`) ? pid : undefined;
}

export interface Pm2Target {
  home: string;
  pm2Home: string;
  /** The project's pm2; without it (uninstalled since up) the daemon and its apps are just signalled. */
  pm2Bin: string | undefined;
}

/** The owner of PM2_HOME, so root stops a deploy user's daemon as that user (and leaves no root-owned files). */
async function ownerOf(path: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const info = await stat(path).catch(() => undefined);
  return info && info.uid !== 0 ? { uid: info.uid, gid: info.gid } : undefined;
}

/** `pm2 kill` stops the apps gracefully (SIGINT) and then the daemon; whatever survives it gets signalled. */
export async function stopPm2({ home, pm2Home, pm2Bin }: Pm2Target): Promise<void> {
  const pid = await runningPm2(pm2Home);
  if (pid === undefined) return;
  const apps = await childPids(pid);
  if (pm2Bin) {
    await execa(pm2Bin, ["kill"], {
      env: { HOME: home, PM2_HOME: pm2Home, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
      extendEnv: false,
      reject: false,
      stdin: "ignore",
      timeout: 30_000,
      ...(await ownerOf(pm2Home)),
    });
  }
  await stopPid(pid);
  await Promise.all(apps.map((app) => stopPid(app)));
}
