import { randomBytes } from "node:crypto";
import os from "node:os";
import { NexusError } from "../errors.js";
import type { Emit } from "../events/events.js";
import { runOp } from "../remote/op.js";
import { cmd } from "../remote/quote.js";
import { writePrivateFile } from "../remote/release.js";
import { lockAndInspect, lockRemove, removeJournal } from "../remote/server-state.js";
import type { Host } from "./fleet.js";
import { rememberLockedState } from "./state.js";

export interface LockHolder {
  user: string;
  host: string;
  pid: number;
  command: string;
  release?: string;
  time: string;
  token: string;
}

export class LockError extends NexusError {}

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

function parseHolder(raw: string): Partial<LockHolder> | undefined {
  try {
    const parsed = JSON.parse(raw) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Partial<LockHolder>) : undefined;
  } catch {
    return undefined;
  }
}

export function describeHolder(raw: string): string {
  const h = parseHolder(raw);
  if (!h) return raw.slice(0, 200);
  return `${h.user ?? "?"}@${h.host ?? "?"} (pid ${h.pid ?? "?"}, ${h.command ?? "?"}${h.release ? ` ${h.release}` : ""}) since ${h.time ?? "?"}`;
}

/** The token that identifies a lock's holder: what a breaker must find still there to remove it. */
export function holderToken(raw: string): string | undefined {
  const token = parseHolder(raw)?.token;
  return typeof token === "string" && /^[0-9a-f]{8,64}$/.test(token) ? token : undefined;
}

/** Whether the holder is known to be gone: taken on this machine by a process that no longer exists. */
export function isStale(raw: string): boolean {
  const h = parseHolder(raw);
  if (!h || h.host !== os.hostname() || typeof h.pid !== "number") return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Whether the holder is a process on this machine that still runs. */
export function isLiveHere(raw: string): boolean {
  const h = parseHolder(raw);
  return !!h && h.host === os.hostname() && typeof h.pid === "number" && !isStale(raw);
}

/**
 * Removes a lock whose content was inspected, only if it still holds that holder's token: a lock
 * taken since then (by a deploy that broke the same stale lock first) is left alone.
 */
export async function breakLock(host: Host, inspected: string): Promise<boolean> {
  // A lock written by hand or by an old version has no token: its whole (one-line) content is the mark.
  const mark = holderToken(inspected) ?? inspected.trim();
  if (!mark)
    throw new LockError(
      `${host.server.name}: the lock file is empty; remove ${host.layout.lock} by hand if no deploy runs`,
    );
  return runOp(host.session, lockRemove(host.layout, mark));
}

/**
 * Takes the deploy lock on every host before any change, or none: on a conflict the locks
 * already taken are released. Waits up to `waitMs` for a held lock. Each host's state is read
 * under its lock in the same exchange (`readState` uses that read if nothing ran there since).
 */
export async function lockAll(hosts: Host[], holder: LockHolder, emit: Emit, waitMs = 0): Promise<void> {
  const text = JSON.stringify(holder);
  // Every host at once: with no other holder (the usual case) the fleet is locked in one exchange.
  const first = await Promise.allSettled(hosts.map((h) => runOp(h.session, lockAndInspect(h.layout, text))));
  const takenAtOnce = hosts.filter((_, i) => {
    const result = first[i];
    return result?.status === "fulfilled" && result.value.attempt.acquired;
  });
  if (takenAtOnce.length === hosts.length) {
    hosts.forEach((h, i) => {
      const result = first[i];
      if (result?.status === "fulfilled" && result.value.state) rememberLockedState(h, result.value.state);
    });
    return;
  }
  // Another holder, or a failure: ours go back, and the hosts are taken one by one in the
  // config's order, so that of two commands racing for the same fleet, one wins.
  await unlockAll(takenAtOnce, holder);
  const taken: Host[] = [];
  const deadline = Date.now() + waitMs;
  try {
    for (const host of hosts) {
      for (;;) {
        const { attempt, state } = await runOp(host.session, lockAndInspect(host.layout, text));
        if (attempt.acquired) {
          taken.push(host);
          if (state) rememberLockedState(host, state);
          break;
        }
        const current = attempt.holder;
        if (isStale(current)) {
          const journal = await host.session.exec(cmd("test", "-f", host.layout.journal));
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
          await breakLock(host, current);
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

/** Hosts whose lock a holder already let go of with its last exchange there (`recordAll`). */
const released = new WeakMap<LockHolder, Set<Host>>();

/** The op that lets go of the holder's lock on a host; `markReleased` once it has run. */
export function unlockOp(host: Host, holder: LockHolder) {
  return lockRemove(host.layout, holder.token);
}

export function markReleased(holder: LockHolder, host: Host): void {
  const set = released.get(holder) ?? new Set<Host>();
  set.add(host);
  released.set(holder, set);
}

export async function unlockAll(hosts: Host[], holder: LockHolder): Promise<void> {
  const done = released.get(holder);
  await Promise.allSettled(
    hosts.filter((h) => !done?.has(h)).map((h) => runOp(h.session, lockRemove(h.layout, holder.token))),
  );
}

export interface JournalEntry {
  command: string;
  release: string;
  previous: string | null;
  drained?: boolean;
}

/** Records on each host what is about to change, so that a killed command can be recovered. */
export async function writeJournals(hosts: Host[], entry: (host: Host) => JournalEntry): Promise<void> {
  await Promise.all(
    hosts.map((h) =>
      runOp(
        h.session,
        writePrivateFile(
          h.layout.journal,
          JSON.stringify({
            ...entry(h),
            pid: process.pid,
            host: os.hostname(),
            time: new Date().toISOString(),
          }),
          "writing the journal",
        ),
      ),
    ),
  );
}

export async function clearJournals(hosts: Host[]): Promise<void> {
  await Promise.allSettled(hosts.map((h) => runOp(h.session, removeJournal(h.layout))));
}
