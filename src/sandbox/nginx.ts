import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { runningDaemon, stopDaemon, testConfig } from "./daemon.js";
import { SandboxError } from "./errors.js";
import { nginxPaths, renderNginxConf, renderUpstreamConf } from "./layout.js";
import { waitFor, waitForListening } from "./processes.js";

export async function hasStubStatus(nginx: string): Promise<boolean> {
  // nginx -V prints its configure arguments on stderr.
  const result = await execa(nginx, ["-V"], { reject: false, all: true, stdin: "ignore" });
  return /http_stub_status_module/.test(result.all ?? "");
}

/**
 * As root, nginx workers run as "nobody" and must reach the temp dirs under the prefix; only when some
 * ancestor is closed to others (e.g. a sandbox under /root) do they need `user root;`.
 */
export async function workersNeedRoot(prefix: string): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  for (let dir = prefix; ; dir = dirname(dir)) {
    try {
      if (((await stat(dir)).mode & 0o001) === 0) return true;
    } catch {
      return true;
    }
    if (dirname(dir) === dir) return false;
  }
}

export interface NginxSetup {
  lbRoot: string;
  listenAddress: string;
  listenPort: number;
  appAddresses: string[];
  stubStatus: boolean;
  /** Emit `user root;` (see workersNeedRoot). */
  userRoot: boolean;
  /** Group (gid) that may edit the upstream file in place: the deploy user's, in deploy-user mode. */
  upstreamGroup?: number;
}

/** A fresh cluster starts with every app server in the upstream, whatever nexus left there last time. */
export async function writeNginxFiles(setup: NginxSetup): Promise<void> {
  const p = nginxPaths(setup.lbRoot);
  await mkdir(join(p.prefix, "tmp"), { recursive: true });
  await writeFile(
    p.conf,
    renderNginxConf({
      listen: `${setup.listenAddress}:${setup.listenPort}`,
      userRoot: setup.userRoot,
      stubStatus: setup.stubStatus,
    }),
  );
  await writeFile(p.upstream, renderUpstreamConf(setup.appAddresses));
  if (setup.upstreamGroup !== undefined) {
    // Root owns everything else; the directory stays closed to the group, so backups go elsewhere.
    await chown(p.upstream, 0, setup.upstreamGroup);
    await chmod(p.upstream, 0o664);
  }
}

function nginxArgs(lbRoot: string): string[] {
  return ["-p", `${nginxPaths(lbRoot).prefix}/`, "-c", "nginx.conf"];
}

/** The master's command line holds the `-p` prefix, which tells our nginx apart from a recycled pid. */
export async function runningNginx(lbRoot: string): Promise<number | undefined> {
  const p = nginxPaths(lbRoot);
  return runningDaemon(p.pid, `${p.prefix}/`);
}

export async function startNginx(nginx: string, setup: NginxSetup): Promise<number> {
  const p = nginxPaths(setup.lbRoot);
  const args = nginxArgs(setup.lbRoot);
  await testConfig("nginx", nginx, [...args, "-t"], p.conf);
  await rm(p.pid, { force: true });
  // The daemonized master keeps no pipe of ours open, so this returns once the parent has exited.
  const result = await execa(nginx, args, { reject: false, all: true, stdin: "ignore" });
  if (result.exitCode !== 0) {
    throw new SandboxError(`nginx failed to start (exit ${result.exitCode}):\n${result.all}`);
  }
  const pid = await waitFor(() => runningNginx(setup.lbRoot), 5000);
  if (pid === undefined) {
    throw new SandboxError(
      `nginx did not write ${p.pid}; see ${p.errorLog}:\n${await readFile(p.errorLog, "utf8").catch(() => "")}`,
    );
  }
  if (!(await waitForListening(setup.listenAddress, setup.listenPort, 5000))) {
    throw new SandboxError(
      `nginx is not accepting connections on ${setup.listenAddress}:${setup.listenPort}; see ${p.errorLog}`,
    );
  }
  return pid;
}

/** SIGTERM is nginx's fast shutdown; the master waits for its workers before exiting. */
export async function stopNginx(lbRoot: string): Promise<void> {
  await stopDaemon(await runningNginx(lbRoot), nginxPaths(lbRoot).pid);
}
