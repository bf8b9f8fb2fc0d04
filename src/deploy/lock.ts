import { randomBytes } from "node:crypto";
import os from "node:os";
import * as remote from "../remote/commands.js";
import { shq } from "../remote/quote.js";
import type { Emit } from "./events.js";
import type { Host } from "./fleet.js";

export interface LockHolder {
  user: string;
  host: string;
  pid: number;
  command: string;
  release?: string;
  time: string;
  token: string;
}

export function newHolder(command: string, release?: string): LockHolder {
  return {
    user: os.userInfo().username,
    host: os.hostname(),
    pid: process.pid,
    command,
    release,
    time: new Date().toISOString(),
    token: randomBytes(12).toString("hex"),
  };
}

export function describeHolder(raw: string): string {
  try {
    const h = JSON.parse(raw) as Partial<LockHolder>;
    return `${h.user ?? "?"}@${h.host ?? "?"} (pid ${h.pid ?? "?"}, ${h.command ?? "?"}${h.release ? ` ${h.release}` : ""}) since ${h.time ?? "?"}`;
  } catch {
    return raw.slice(0, 200);
  }
}

/** A lock taken on this machine by a process that no longer exists is stale. */
export function isStale(raw: string): boolean {
  try {
    const h = JSON.parse(raw) as Partial<LockHolder>;
    if (h.host !== os.hostname() || typeof h.pid !== "number") return false;
    try {
      process.kill(h.pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  } catch {
    return false;
  }
}

export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LockError";
  }
}

/**
 * Takes the deploy lock on every host before any change, or none: on a conflict the locks
 * already taken are released. Waits up to `waitMs` for a held lock.
 */
export async function lockAll(hosts: Host[], holder: LockHolder, emit: Emit, waitMs = 0): Promise<void> {
  const text = JSON.stringify(holder);
  const taken: Host[] = [];
  const deadline = Date.now() + waitMs;
  try {
    for (const host of hosts) {
      for (;;) {
        const out = await host.session.run(remote.lockAcquire(host.layout, text), {
          what: "taking the deploy lock",
        });
        if (out.includes("@acquired")) {
          taken.push(host);
          break;
        }
        const current = out.replace(/^@held\s*/m, "").trim();
        if (isStale(current)) {
          const journal = await host.session.exec(`test -f ${shq(host.layout.journal)}`);
          if (journal.code === 0) {
            throw new LockError(
              `${host.server.name}: an interrupted command left this server mid-change (${describeHolder(current)}, no longer running). Run \`nexus recover\` to bring the fleet back to a consistent state.`,
            );
          }
          emit({
            type: "warn",
            server: host.server.name,
            message: `breaking a stale lock: ${describeHolder(current)}`,
          });
          await host.session.run(remote.lockBreak(host.layout));
          continue;
        }
        if (Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        throw new LockError(
          `${host.server.name}: deploy locked by ${describeHolder(current)}. Wait for it (--lock-wait); if that process died, run \`nexus recover\`.`,
        );
      }
    }
  } catch (error) {
    await unlockAll(taken, holder);
    throw error;
  }
}

export async function unlockAll(hosts: Host[], holder: LockHolder): Promise<void> {
  await Promise.allSettled(hosts.map((h) => h.session.exec(remote.lockRelease(h.layout, holder.token))));
}

/** Records on each host what is about to change, so that a killed command can be recovered. */
export async function writeJournals(
  hosts: Host[],
  entry: (host: Host) => { command: string; release: string; previous: string | null },
): Promise<void> {
  await Promise.all(
    hosts.map((h) =>
      h.session.run(remote.writePrivateFile(h.layout.journal), {
        stdin: JSON.stringify({
          ...entry(h),
          pid: process.pid,
          host: os.hostname(),
          time: new Date().toISOString(),
        }),
        what: "writing the journal",
      }),
    ),
  );
}

export async function clearJournals(hosts: Host[]): Promise<void> {
  await Promise.allSettled(hosts.map((h) => h.session.exec(remote.removeJournal(h.layout))));
}
