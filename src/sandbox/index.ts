import { chmod, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { bastionPaths, runningBastion, type SandboxBastion, startBastion, stopBastion } from "./bastion.js";
import { writeBastionDeployConfig } from "./deploy-config.js";
import {
  assertReachableByOthers,
  chownTree,
  type DeployUser,
  ensureDeployUser,
  installSudoers,
  lockPassword,
  removeSudoers,
  renderSudoers,
  setPassword,
} from "./deploy-user.js";
import { SandboxError } from "./errors.js";
import { runningHaproxy, startHaproxy, stopHaproxy, writeHaproxyDeployConfig } from "./haproxy.js";
import {
  buildInfo,
  HOST_NAMES,
  hostPaths,
  knownHostsLine,
  lbAddress,
  nginxArgv,
  nginxPaths,
  type ResolvedOptions,
  renderBashrc,
  renderNginxWrapper,
  renderSshClientConfig,
  renderSshdConfig,
  resolveOptions,
  type SandboxHost,
  type SandboxInfo,
  type SandboxLogin,
  type SandboxOptions,
  sandboxPaths,
} from "./layout.js";
import {
  hasStubStatus,
  runningNginx,
  startNginx,
  stopNginx,
  workersNeedRoot,
  writeNginxFiles,
} from "./nginx.js";
import {
  findProjectRoot,
  installSandboxPackageManagers,
  installSandboxPm2,
  runningPm2,
  stopPm2,
} from "./pm2.js";
import { assertPortsFree, requireBinary } from "./processes.js";
import { ensureClientKey, ensureHostKey, ensureKeyPair, runningSshd, startSshd, stopSshd } from "./sshd.js";
import { currentStateDir, ensureStateDir, linkStateDir, planLink, stateDirFor } from "./state-dir.js";

export type { SandboxBastion } from "./bastion.js";
export {
  type SandboxDeployOptions,
  sandboxBastionDeployConfig,
  sandboxDeployConfig,
} from "./deploy-config.js";
export { DEPLOY_USER } from "./deploy-user.js";
export { SandboxError } from "./errors.js";
export type { SandboxHost, SandboxInfo, SandboxLb, SandboxLogin, SandboxOptions } from "./layout.js";
export { currentStateDir, stateDirFor } from "./state-dir.js";

export interface SandboxProcess {
  name: string;
  pid: number;
  alive: boolean;
}

export type SandboxStatus = { up: boolean; processes: SandboxProcess[] } & Partial<SandboxInfo>;

interface SandboxState extends SandboxInfo {
  pids: Record<string, number>;
  startedAt: string;
}

/** The sandbox's bin (its pm2, the Nginx wrapper) first: a pm2 installed on the machine is never used. */
function sessionPath(sandboxBin: string, extraDirs: string[]): string {
  const dirs = [
    sandboxBin,
    dirname(process.execPath),
    ...extraDirs,
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
  ];
  return [...new Set(dirs)].join(":");
}

async function readState(dir: string): Promise<SandboxState | undefined> {
  try {
    return JSON.parse(await readFile(sandboxPaths(dir).state, "utf8")) as SandboxState;
  } catch {
    return undefined;
  }
}

function infoOf(state: SandboxState): SandboxInfo {
  const { pids: _pids, startedAt: _startedAt, ...info } = state;
  return info;
}

/** Host directories present in `dir`, so leftovers are found even without (or with a stale) state file. */
async function hostNamesIn(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(join(dir, "hosts"), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && HOST_NAMES.includes(e.name)).map((e) => e.name);
  } catch {
    return [];
  }
}

async function liveProcesses(dir: string): Promise<SandboxProcess[]> {
  const processes: SandboxProcess[] = (await runningBastion(dir)).map((p) => ({ ...p, alive: true }));
  for (const name of await hostNamesIn(dir)) {
    const p = hostPaths(dir, name);
    const sshd = await runningSshd(dir, name);
    if (sshd !== undefined) processes.push({ name: `sshd:${name}`, pid: sshd, alive: true });
    const nginx = await runningNginx(p.root);
    if (nginx !== undefined) processes.push({ name: `nginx:${name}`, pid: nginx, alive: true });
    const haproxy = await runningHaproxy(p.home);
    if (haproxy !== undefined) processes.push({ name: `haproxy:${name}`, pid: haproxy, alive: true });
    const pm2 = await runningPm2(p.pm2Home);
    if (pm2 !== undefined) processes.push({ name: `pm2:${name}`, pid: pm2, alive: true });
  }
  return processes;
}

/** `namedDir`: the directory given to sandboxUp (a link to the state dir), or the state dir itself. */
export async function sandboxStatus(namedDir: string): Promise<SandboxStatus> {
  const dir = await currentStateDir(namedDir);
  const state = await readState(dir);
  const live = await liveProcesses(dir);
  if (!state) return { up: false, processes: live };
  const expected = Object.entries(state.pids).map(([name, pid]) => ({
    name,
    pid,
    alive: live.some((p) => p.name === name && p.pid === pid),
  }));
  const extra = live.filter((p) => !(p.name in state.pids));
  return { up: expected.every((p) => p.alive), processes: [...expected, ...extra], ...infoOf(state) };
}

export async function sandboxDown(namedDir: string): Promise<void> {
  const dir = await currentStateDir(namedDir);
  const state = await readState(dir);
  const names = await hostNamesIn(dir);
  // pm2 first, so the apps drain while nginx and sshd are still there.
  await Promise.all(names.map((name) => stopPm2(hostPaths(dir, name).pm2Home)));
  for (const name of names) await stopNginx(hostPaths(dir, name).root);
  for (const name of names) await stopHaproxy(hostPaths(dir, name).home);
  await stopBastion(dir);
  await Promise.all(names.map((name) => stopSshd(dir, name)));
  if (process.getuid?.() === 0) {
    await removeSudoers(dir);
    if (state?.passwordFile) await lockPassword(state.user);
  }
  const left = await liveProcesses(dir);
  if (left.length > 0) {
    throw new SandboxError(
      `sandbox processes still running after down: ${left.map((p) => `${p.name} (pid ${p.pid})`).join(", ")}`,
    );
  }
  if (state || names.length > 0) await rm(sandboxPaths(dir).state, { force: true });
}

/**
 * Makes every host's login shell take `seconds` to start (0: instant again) on a sandbox that is
 * up, as a server's ~/.bashrc loading nvm does: the bench measures nexus against it.
 */
export async function setLoginDelay(namedDir: string, seconds: number): Promise<void> {
  const dir = await currentStateDir(namedDir);
  for (const name of await hostNamesIn(dir)) {
    // Written in place: the file keeps its owner (the deploy user).
    await writeFile(join(hostPaths(dir, name).home, ".bashrc"), renderBashrc(seconds));
  }
}

/** Stops the sandbox, then removes its state dir and the link to it. */
export async function sandboxPurge(namedDir: string): Promise<void> {
  const dir = await currentStateDir(namedDir);
  await sandboxDown(namedDir);
  await rm(dir, { recursive: true, force: true });
  const link = resolve(namedDir);
  if (link !== dir) await rm(link, { force: true });
}

function sameLayout(a: SandboxInfo, b: SandboxInfo): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function loginFromEnv(): SandboxLogin | undefined {
  const value = process.env.NEXUS_SANDBOX_LOGIN;
  if (!value) return undefined;
  if (value !== "deploy-user" && value !== "self") {
    throw new SandboxError(`NEXUS_SANDBOX_LOGIN must be "deploy-user" or "self", got "${value}"`);
  }
  return value;
}

/** Each host's home, sshd config, .bashrc and (deploy user) authorized_keys; its host key line for known_hosts. */
async function writeHostFiles(
  o: ResolvedOptions,
  info: SandboxInfo,
  login: {
    deployUser: DeployUser | undefined;
    path: string;
    user: string;
    clientKey: string;
    sshKeygen: string;
  },
): Promise<string[]> {
  const { deployUser, path, user, clientKey, sshKeygen } = login;
  return Promise.all(
    info.hosts.map(async (host) => {
      const p = hostPaths(o.dir, host.name);
      await mkdir(p.home, { recursive: true, mode: 0o755 });
      const sftp = o.noSftp?.includes(host.name) ? null : o.sftpServer?.[host.name];
      // The deploy user reads its own authorized_keys (sshd opens it as the user), in its home like on a server.
      const authorizedKeysFile = deployUser ? p.authorizedKeys : undefined;
      const passwordOnly = o.passwordLogin?.includes(host.name) ?? false;
      await writeFile(
        p.sshdConfig,
        renderSshdConfig({
          host,
          dir: o.dir,
          path,
          user,
          sftp,
          authorizedKeysFile,
          passwordAuthentication: passwordOnly,
          ...(info.bastion && !o.bastionDirect ? { allowFrom: info.bastion.address } : {}),
        }),
      );
      await writeFile(join(p.home, ".bashrc"), renderBashrc());
      if (deployUser) {
        await mkdir(dirname(p.authorizedKeys), { recursive: true, mode: 0o700 });
        // A password-only host starts with no key at all, like a server before `nexus setup`.
        const keys = passwordOnly ? "" : `from="127.0.0.0/8" ${clientKey}\n`;
        await writeFile(p.authorizedKeys, keys, { mode: 0o600 });
        await chownTree(p.home, deployUser);
      }
      return ensureHostKey(sshKeygen, o.dir, host);
    }),
  );
}

/** Every address and port the sandbox will listen on: each must be free before it starts. */
function portsToListenOn(o: ResolvedOptions, info: SandboxInfo) {
  const lbListen = { address: lbAddress(o.ipPrefix), port: o.lbPort };
  return [
    ...info.hosts.flatMap((h) => [
      { address: h.address, port: h.sshPort, what: `sshd of ${h.name}` },
      { address: h.address, port: o.appPort, what: `app on ${h.name}` },
    ]),
    { ...lbListen, what: "nginx load balancer" },
    ...(info.bastion
      ? [{ address: info.bastion.address, port: info.bastion.sshPort, what: "the bastion (jump host)" }]
      : []),
    ...(info.haproxy ? [{ ...lbListen, port: lbListen.port + 1, what: "haproxy load balancer" }] : []),
  ];
}

/** What the bastion's network namespace needs (root, `ip`): socat, which joins it to loopback. */
async function bastionTools(asRoot: boolean): Promise<string> {
  if (!asRoot)
    throw new SandboxError("the bastion sandbox runs its jump host in a network namespace: start it as root");
  await requireBinary("ip", "iproute2 (apt-get install iproute2)");
  return requireBinary("socat", "socat (apt-get install socat)");
}

/** The bastion's home, its authorized_keys and host key: the bastion's line for known_hosts. */
async function writeBastionFiles(
  o: ResolvedOptions,
  bastion: SandboxBastion,
  login: { deployUser: DeployUser | undefined; clientKey: string; sshKeygen: string },
): Promise<string> {
  const { deployUser, clientKey, sshKeygen } = login;
  const b = bastionPaths(o.dir);
  // Open to the deploy user, who reads its authorized_keys below (sshd opens it as the user).
  await mkdir(b.root, { recursive: true, mode: 0o755 });
  await chmod(b.root, 0o755);
  await mkdir(dirname(b.authorizedKeys), { recursive: true, mode: 0o700 });
  await writeFile(b.authorizedKeys, `from="127.0.0.0/8" ${clientKey}\n`, { mode: 0o600 });
  if (deployUser) await chownTree(b.home, deployUser);
  const key = await ensureKeyPair(sshKeygen, b.hostKey, `nexus-sandbox-${bastion.name}`);
  return knownHostsLine(bastion.address, bastion.sshPort, key);
}

/** The load balancer's Nginx files, and (deploy user) the sudoers rule for its test and reload: its setup. */
async function writeBalancerFiles(
  o: ResolvedOptions,
  info: SandboxInfo,
  lb: { nginx: string; lbRoot: string; deployUser: DeployUser | undefined },
) {
  const { nginx, lbRoot, deployUser } = lb;
  const lbListen = { address: lbAddress(o.ipPrefix), port: o.lbPort };
  const nginxSetup = {
    lbRoot,
    listenAddress: lbListen.address,
    listenPort: lbListen.port,
    appAddresses: info.hosts.map((h) => h.appAddress),
    stubStatus: await hasStubStatus(nginx),
    userRoot: await workersNeedRoot(lbRoot),
    ...(deployUser ? { upstreamGroup: deployUser.gid } : {}),
  };
  await writeNginxFiles(nginxSetup);
  if (deployUser) {
    const argv = nginxArgv(nginx, nginxPaths(lbRoot).prefix);
    await installSudoers(
      o.dir,
      renderSudoers(deployUser.name, [
        [...argv, "-t"],
        // Read-only (test and print the config): `nexus check` looks for the upstream file in it.
        [...argv, "-T"],
        [...argv, "-s", "reload"],
      ]),
    );
  }

  return nginxSetup;
}

/**
 * Every sshd, then Nginx (and HAProxy): their pids. On a failure, what did start is stopped
 * (sandboxDown) before the error goes on.
 */
async function startDaemons(
  o: ResolvedOptions,
  info: SandboxInfo,
  daemons: {
    sshd: string;
    nginx: string;
    nginxSetup: Parameters<typeof startNginx>[1];
    haproxy: string | false | undefined;
    socat: string | false | undefined;
    user: string;
    projectRoot: string;
  },
): Promise<Record<string, number>> {
  const { sshd, nginx, nginxSetup, haproxy, socat, user, projectRoot } = daemons;
  const lb = info.hosts[0] as SandboxHost;
  const lbListen = { address: lbAddress(o.ipPrefix), port: o.lbPort };
  const pids: Record<string, number> = {};
  try {
    // allSettled: on failure, every sshd must have finished starting before the cleanup looks for pid files.
    const started = await Promise.allSettled(
      info.hosts.map(async (host) => {
        pids[`sshd:${host.name}`] = await startSshd(sshd, o.dir, host);
      }),
    );
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    pids[`nginx:${lb.name}`] = await startNginx(nginx, nginxSetup);
    if (haproxy && info.haproxy) {
      pids[`haproxy:${lb.name}`] = await startHaproxy(haproxy, lb.home, {
        listen: `${lbListen.address}:${lbListen.port + 1}`,
        socketUser: user,
        servers: info.hosts.map((h) => ({
          name: h.name,
          address: h.appAddress,
          surgeAddress: `${h.address}:${o.appPort + 1}`,
        })),
      });
      await writeHaproxyDeployConfig({ ...info, haproxy: info.haproxy }, projectRoot);
    }
    if (info.bastion && socat) {
      await startBastion({ dir: o.dir, bastion: info.bastion, user, hosts: info.hosts, sshd, socat });
      await writeBastionDeployConfig({ ...info, bastion: info.bastion }, projectRoot);
    }
  } catch (error) {
    await sandboxDown(o.dir).catch(() => {});
    throw error;
  }

  return pids;
}

/**
 * Starts the sandbox. Its state lives in a directory of its own (stateDirFor: under /var/tmp,
 * reachable by the deploy user), and `opts.dir` becomes a link to it.
 */
export async function sandboxUp(opts: SandboxOptions): Promise<SandboxInfo> {
  const namedDir = resolve(opts.dir);
  const o = resolveOptions({ ...opts, dir: stateDirFor(namedDir, opts.stateRoot) });
  const asRoot = process.getuid?.() === 0;
  const login = o.login ?? loginFromEnv() ?? (asRoot ? "deploy-user" : "self");
  if (login === "deploy-user" && !asRoot) {
    throw new SandboxError(
      "the deploy-user sandbox creates a user, a sudoers rule and root-owned Nginx files: start it as root, or use NEXUS_SANDBOX_LOGIN=self",
    );
  }
  const [sshd, sshKeygen, nginx, projectRoot] = await Promise.all([
    requireBinary("sshd", "openssh-server (apt-get install openssh-server)"),
    requireBinary("ssh-keygen", "openssh-client (apt-get install openssh-client)"),
    requireBinary("nginx", "nginx or nginx-light (apt-get install nginx-light)"),
    findProjectRoot(),
  ]);
  if (o.passwordLogin?.length && login !== "deploy-user") {
    throw new SandboxError("passwordLogin needs the deploy-user sandbox (started as root)");
  }
  const deployUser = login === "deploy-user" ? await ensureDeployUser() : undefined;
  const user = deployUser?.name ?? userInfo().username;
  const info = buildInfo(o, user, { login, nginx });
  if (o.passwordLogin?.length) info.passwordFile = sandboxPaths(o.dir).passwordFile;

  const link = await planLink(namedDir, o.dir);
  // What was there (a sandbox of the layout before state dirs, a link elsewhere) is stopped first.
  if (link.kind === "replace") await sandboxDown(namedDir);
  await ensureStateDir(o.dir);
  await linkStateDir(namedDir, o.dir, link);

  const status = await sandboxStatus(o.dir);
  const state = await readState(o.dir);
  if (status.up && state) {
    if (!sameLayout(infoOf(state), info)) {
      throw new SandboxError(
        `a sandbox with different options is already up in ${o.dir}; stop it first with sandboxDown`,
      );
    }
    return infoOf(state);
  }
  // Half-up (something died, or a previous up failed midway): start from a clean slate.
  if (status.processes.length > 0 || state) await sandboxDown(o.dir);

  const haproxy = info.haproxy && (await requireBinary("haproxy", "haproxy (apt-get install haproxy)"));
  const socat = info.bastion && (await bastionTools(asRoot));
  const lb = info.hosts[0] as SandboxHost;
  await assertPortsFree(portsToListenOn(o, info));

  // Privilege separation needs this empty directory when sshd runs as root; a non-root sshd skips it.
  if (asRoot) await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  if (deployUser) await assertReachableByOthers([o.dir, process.execPath]);
  const pm2 = await installSandboxPm2(projectRoot, o.dir);
  await installSandboxPackageManagers(projectRoot, o.dir);
  await ensureClientKey(sshKeygen, o.dir);
  const clientKey = (await readFile(`${sandboxPaths(o.dir).clientKey}.pub`, "utf8")).trim();
  if (deployUser && info.passwordFile) await setPassword(deployUser.name, info.passwordFile);

  const paths = sandboxPaths(o.dir);
  const path = sessionPath(dirname(pm2), [dirname(nginx)]);
  const lbRoot = hostPaths(o.dir, lb.name).root;
  await mkdir(paths.bin, { recursive: true, mode: 0o755 });
  await writeFile(
    paths.nginxWrapper,
    renderNginxWrapper(nginxArgv(nginx, nginxPaths(lbRoot).prefix), deployUser !== undefined),
    { mode: 0o755 },
  );
  const knownHostsLines = await writeHostFiles(o, info, { deployUser, path, user, clientKey, sshKeygen });
  if (info.bastion)
    knownHostsLines.push(await writeBastionFiles(o, info.bastion, { deployUser, clientKey, sshKeygen }));
  await writeFile(paths.knownHosts, `${knownHostsLines.join("\n")}\n`);
  await writeFile(paths.sshConfig, renderSshClientConfig(info));
  const nginxSetup = await writeBalancerFiles(o, info, { nginx, lbRoot, deployUser });
  const pids = await startDaemons(o, info, { sshd, nginx, nginxSetup, haproxy, socat, user, projectRoot });
  const newState: SandboxState = { ...info, pids, startedAt: new Date().toISOString() };
  await writeFile(paths.state, `${JSON.stringify(newState, null, 2)}\n`);
  return info;
}
