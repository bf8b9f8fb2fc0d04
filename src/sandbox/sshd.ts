import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { execa } from "execa";
import { runningDaemon } from "./daemon.js";
import { SandboxError } from "./errors.js";
import { hostPaths, knownHostsLine, type SandboxHost, sandboxPaths } from "./layout.js";
import { descendantPids, stopPid, waitFor, waitForListening } from "./processes.js";

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates an ed25519 key pair at `path` unless a complete one is already there. */
export async function ensureKeyPair(sshKeygen: string, path: string, comment: string): Promise<string> {
  if (!(await exists(path)) || !(await exists(`${path}.pub`))) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await rm(path, { force: true });
    await rm(`${path}.pub`, { force: true });
    const result = await execa(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], {
      reject: false,
      stdin: "ignore",
    });
    if (result.exitCode !== 0) {
      throw new SandboxError(`ssh-keygen failed for ${path}: ${result.stderr || result.stdout}`);
    }
  }
  return (await readFile(`${path}.pub`, "utf8")).trim();
}

export async function ensureClientKey(sshKeygen: string, dir: string): Promise<void> {
  const paths = sandboxPaths(dir);
  const publicKey = await ensureKeyPair(sshKeygen, paths.clientKey, "nexus-sandbox-client");
  // The key is only good for loopback logins, even if it leaks out of the sandbox dir.
  await writeFile(paths.authorizedKeys, `from="127.0.0.0/8" ${publicKey}\n`, { mode: 0o600 });
}

/** Ensures the host key exists and returns this host's known_hosts line. */
export async function ensureHostKey(sshKeygen: string, dir: string, host: SandboxHost): Promise<string> {
  const publicKey = await ensureKeyPair(
    sshKeygen,
    hostPaths(dir, host.name).hostKey,
    `nexus-sandbox-${host.name}`,
  );
  return knownHostsLine(host.address, host.sshPort, publicKey);
}

async function logTail(path: string, lines = 15): Promise<string> {
  try {
    return (await readFile(path, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** The config path is on the daemon's command line, which tells our sshd apart from a recycled pid. */
export async function runningSshd(dir: string, name: string): Promise<number | undefined> {
  const p = hostPaths(dir, name);
  return runningDaemon(p.sshdPid, p.sshdConfig);
}

export async function startSshd(sshd: string, dir: string, host: SandboxHost): Promise<number> {
  const p = hostPaths(dir, host.name);
  await rm(p.sshdPid, { force: true });
  // sshd logs startup errors to the -E file too, so its tail is the useful part of any failure message.
  const result = await execa(sshd, ["-f", p.sshdConfig, "-E", p.sshdLog], { reject: false, stdin: "ignore" });
  const failure = async (what: string) =>
    new SandboxError(
      `sshd for ${host.name} (${host.address}:${host.sshPort}) ${what}. ${[
        result.stderr,
        await logTail(p.sshdLog),
      ]
        .filter(Boolean)
        .join("\n")}`,
    );
  if (result.exitCode !== 0) throw await failure(`exited with code ${result.exitCode}`);
  // sshd daemonizes before it binds and writes the pid file only once it listens.
  const pid = await waitFor(() => runningSshd(dir, host.name), 5000);
  if (pid === undefined) throw await failure("did not write its pid file");
  if (!(await waitForListening(host.address, host.sshPort, 5000))) {
    throw await failure("is not accepting connections");
  }
  return pid;
}

/** Stops the listener and everything its sessions still run (a real server going away takes those too). */
export async function stopSshd(dir: string, name: string): Promise<void> {
  const pid = await runningSshd(dir, name);
  if (pid === undefined) return;
  const sessions = await descendantPids(pid);
  await stopPid(pid);
  await Promise.all(sessions.map((child) => stopPid(child)));
  await rm(hostPaths(dir, name).sshdPid, { force: true });
}
