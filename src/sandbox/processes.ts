import { access, constants, readFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { SandboxError } from "./errors.js";

const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** Finds an executable on PATH and, since non-root PATHs usually lack them, in the sbin directories. */
export async function findBinary(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...SBIN_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export async function requireBinary(name: string, installHint: string): Promise<string> {
  const found = await findBinary(name);
  if (!found) throw new SandboxError(`${name} not found: install ${installHint}`);
  return found;
}

export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function procStat(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses; everything after the last ")" is fixed.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** A zombie counts as gone: its parent may be an init that reaps late, but it holds no ports or files. */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  if (stat) return stat[0] !== "Z" && stat[0] !== "X";
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function cmdline(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).replace(/\0+$/, "").replaceAll("\0", " ");
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` is alive and its command line contains `marker` (a path only our process has),
 * so a recycled pid is never mistaken for ours.
 */
export async function isOurs(pid: number, marker: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  const cmd = await cmdline(pid);
  return cmd?.includes(marker) === true;
}

export async function childPids(parent: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${parent}/task/${parent}/children`, "utf8");
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function descendantPids(root: number): Promise<number[]> {
  const found: number[] = [];
  let level = await childPids(root);
  while (level.length > 0) {
    found.push(...level);
    level = (await Promise.all(level.map(childPids))).flat();
  }
  return found;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return true;
    await sleep(50);
  }
  return !(await isAlive(pid));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Sends `sig`, then SIGKILL if the process outlives `timeoutMs`. */
export async function stopPid(pid: number, sig: NodeJS.Signals = "SIGTERM", timeoutMs = 5000): Promise<void> {
  if (!(await isAlive(pid))) return;
  signal(pid, sig);
  if (await waitForExit(pid, timeoutMs)) return;
  signal(pid, "SIGKILL");
  if (!(await waitForExit(pid, 2000))) throw new SandboxError(`process ${pid} did not exit after SIGKILL`);
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}

/** Resolves with undefined when address:port can be bound, otherwise with the error code (EADDRINUSE...). */
export function probeListen(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

export async function assertPortsFree(endpoints: { address: string; port: number; what: string }[]) {
  const problems: string[] = [];
  for (const { address, port, what } of endpoints) {
    const code = await probeListen(address, port);
    if (code === "EADDRINUSE")
      problems.push(`${address}:${port} (${what}) is already in use by another process`);
    else if (code) problems.push(`cannot listen on ${address}:${port} (${what}): ${code}`);
  }
  if (problems.length > 0) {
    throw new SandboxError(
      `${problems.join("; ")}. Stop whatever holds them (see ss -ltnp) or choose other ports or another ipPrefix.`,
    );
  }
}

function canConnect(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Resolves true once something accepts TCP connections on address:port (connects, never binds, so no race). */
export async function waitForListening(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return (
    (await waitFor(async () => ((await canConnect(address, port)) ? true : undefined), timeoutMs, 100)) ===
    true
  );
}

export async function environ(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0").filter(Boolean);
  } catch {
    return [];
  }
}
