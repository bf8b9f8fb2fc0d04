import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import os from "node:os";
import { nexusCommand } from "../config/invocation.js";
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
  /** The config's destination (`-d staging`), so a lock says which environment's command holds it. */
  destination?: string;
  time: string;
  token: string;
  /**
   * What tells this process apart from another with the same hostname and pid (Linux): the
   * kernel's boot id, the pid namespace and the process's start time. Two CI jobs in containers
   * with their own pid namespaces and one hostname (`--network host`, a fixed `hostname:`) cannot
   * see each other's pids: without these, each took the other's live lock for a stale one.
   */
  bootId?: string;
  pidNamespace?: string;
  startTime?: string;
}

export class LockError extends NexusError {}

export function newHolder(command: string, release?: string, destination?: string): LockHolder {
  const here = localProbe();
  return {
    user: os.userInfo().username,
    host: os.hostname(),
    pid: process.pid,
    command,
    release,
    ...(destination ? { destination } : {}),
    time: new Date().toISOString(),
    token: randomBytes(12).toString("hex"),
    bootId: here.bootId,
    pidNamespace: here.pidNamespace,
    startTime: here.ownStartTime,
  };
}

/** How this process sees processes: what `isStale` compares a holder with. */
export interface HolderProbe {
  hostname: string;
  /** Linux has pid namespaces: there, a holder's pid means something only in the same one. */
  linux: boolean;
  bootId?: string;
  pidNamespace?: string;
  /** This process's start time (from /proc/self, whatever namespace /proc shows). */
  ownStartTime?: string;
  /** "gone" only when kill(pid, 0) says no such process. */
  signal(pid: number): "running" | "gone";
  /** A pid's start time, when /proc shows this pid namespace's processes; else undefined. */
  startTime(pid: number): string | undefined;
}

function readOr(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (clock ticks since boot), and its pid (field 1). */
function statOf(file: string): { pid: string; start: string } | undefined {
  const text = readOr(() => readFileSync(file, "utf8"));
  // The command name (field 2) is in parentheses and may hold spaces and ")": fields follow the last ")".
  const close = text?.lastIndexOf(")") ?? -1;
  if (!text || close < 0) return undefined;
  const rest = text.slice(close + 2).split(" ");
  const start = rest[19];
  return start ? { pid: text.slice(0, text.indexOf(" ")), start } : undefined;
}

export function localProbe(): HolderProbe {
  const linux = process.platform === "linux";
  const self = linux ? statOf("/proc/self/stat") : undefined;
  // /proc mounted for another pid namespace (`unshare --pid` without --mount-proc) numbers
  // processes otherwise: its /proc/<pid> is not our pid's, so it is not read then.
  const procIsOurs = self?.pid === String(process.pid);
  return {
    hostname: os.hostname(),
    linux,
    bootId: linux ? readOr(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8")) : undefined,
    pidNamespace: linux ? readOr(() => readlinkSync("/proc/self/ns/pid")) : undefined,
    ownStartTime: self?.start,
    signal(pid) {
      try {
        process.kill(pid, 0);
        return "running";
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === "ESRCH" ? "gone" : "running";
      }
    },
    startTime: (pid) => (procIsOurs ? statOf(`/proc/${pid}/stat`)?.start : undefined),
  };
}

/**
 * Whether the holder's pid means a process here: same hostname and, on Linux, the same boot and
 * pid namespace, both recorded in the lock and read here. Anything less cannot tell.
 */
function sameProcessSpace(h: Partial<LockHolder>, here: HolderProbe): boolean {
  if (h.host !== here.hostname || typeof h.pid !== "number") return false;
  const recorded = h.bootId !== undefined || h.pidNamespace !== undefined;
  if (!here.linux && !recorded) return true;
  return (
    h.bootId !== undefined &&
    h.pidNamespace !== undefined &&
    h.bootId === here.bootId &&
    h.pidNamespace === here.pidNamespace
  );
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
  return `${h.user ?? "?"}@${h.host ?? "?"} (pid ${h.pid ?? "?"}, ${h.command ?? "?"}${h.release ? ` ${h.release}` : ""}${typeof h.destination === "string" ? ` -d ${h.destination}` : ""}) since ${h.time ?? "?"}`;
}

/** The token that identifies a lock's holder: what a breaker must find still there to remove it. */
export function holderToken(raw: string): string | undefined {
  const token = parseHolder(raw)?.token;
  return typeof token === "string" && /^[0-9a-f]{8,64}$/.test(token) ? token : undefined;
}

/**
 * Whether the holder is known to be gone: taken in this machine's pid space (same hostname, and
 * on Linux the same boot and pid namespace) by a process that no longer exists, or whose pid now
 * belongs to a process started at another time. Whatever cannot be told (another machine, another
 * container with this hostname, a lock without these marks) is taken as alive.
 */
export function isStale(raw: string, here: HolderProbe = localProbe()): boolean {
  const h = parseHolder(raw);
  if (!h || !sameProcessSpace(h, here)) return false;
  const pid = h.pid as number;
  if (here.signal(pid) === "gone") return true;
  const now = h.startTime === undefined ? undefined : here.startTime(pid);
  return now !== undefined && now !== h.startTime;
}

/** Whether the holder is a process of this machine's pid space that still runs. */
export function isLiveHere(raw: string, here: HolderProbe = localProbe()): boolean {
  const h = parseHolder(raw);
  return !!h && sameProcessSpace(h, here) && !isStale(raw, here);
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
              `${host.server.name}: an interrupted command left this server mid-change (${describeHolder(current)}, no longer running). Run \`${nexusCommand("recover")}\` to bring the fleet back to a consistent state.`,
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
          `${host.server.name}: deploy locked by ${describeHolder(current)}. Wait for it (--lock-wait); if that process died, run \`${nexusCommand("recover")}\`.`,
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
