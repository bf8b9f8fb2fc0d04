import { runOp } from "../remote/op.js";
import { inspect, type ReleaseInfo, type ServerState } from "../remote/server-state.js";
import type { Host } from "./fleet.js";

export type { Journal, ReleaseInfo, ServerState } from "../remote/server-state.js";

/** A state read under the lock, with how many commands its session had run when it was read. */
const lockedStates = new WeakMap<Host, { state: ServerState; session: Host["session"]; commands: number }>();

/** Keeps the state read with the lock (`lockAll`): the next `readState` uses it if nothing ran since. */
export function rememberLockedState(host: Host, state: ServerState): void {
  lockedStates.set(host, { state, session: host.session, commands: host.session.commands });
}

export function readState(host: Host): Promise<ServerState> {
  const known = lockedStates.get(host);
  lockedStates.delete(host);
  if (known && known.session === host.session && known.commands === host.session.commands)
    return Promise.resolve(known.state);
  return runOp(host.session, inspect(host.layout));
}

/** The release to go back to: the newest good release staged before the current one. */
export function previousRelease(state: ServerState): string | undefined {
  const index = state.releases.findIndex((r) => r.id === state.current);
  const older = index >= 0 ? state.releases.slice(0, index) : state.releases;
  return older.filter((r) => !r.failed).at(-1)?.id;
}

/**
 * Releases to delete so that at most `keep` remain: failed ones first, then the oldest. The
 * protected ids (current, the rollback target) are never chosen.
 */
export function releasesToPrune(
  releases: readonly ReleaseInfo[],
  keep: number,
  protect: readonly string[],
): string[] {
  const prunable = releases.filter((r) => !protect.includes(r.id));
  const excess = releases.length - keep;
  if (excess <= 0) return [];
  const ordered = [...prunable.filter((r) => r.failed), ...prunable.filter((r) => !r.failed)];
  return ordered.slice(0, excess).map((r) => r.id);
}
