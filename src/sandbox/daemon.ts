import { rm } from "node:fs/promises";
import { execa } from "execa";
import { SandboxError } from "./errors.js";
import { isOurs, readPidFile, stopPid } from "./processes.js";

/**
 * A daemon of the sandbox (sshd, Nginx, HAProxy) is found by its pid file and a marker on its
 * command line (a path only ours has), so a recycled pid is never mistaken for it.
 */
export async function runningDaemon(pidFile: string, marker: string): Promise<number | undefined> {
  const pid = await readPidFile(pidFile);
  return pid !== undefined && (await isOurs(pid, marker)) ? pid : undefined;
}

/** Stops the daemon runningDaemon found, if any (SIGTERM, SIGKILL after 10 s), and removes its pid file. */
export async function stopDaemon(pid: number | undefined, pidFile: string): Promise<void> {
  if (pid === undefined) return;
  await stopPid(pid, "SIGTERM", 10_000);
  await rm(pidFile, { force: true });
}

/** Runs a daemon's configuration test (`nginx -t`, `haproxy -c`); throws its output if it fails. */
export async function testConfig(name: string, bin: string, args: string[], conf: string): Promise<void> {
  const test = await execa(bin, args, { reject: false, all: true, stdin: "ignore" });
  if (test.exitCode !== 0)
    throw new SandboxError(`${name} configuration test failed (${conf}):\n${test.all}`);
}
