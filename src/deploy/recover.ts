import os from "node:os";
import type { Config } from "../config/load.js";
import * as remote from "../remote/commands.js";
import { minInRotation } from "./capacity.js";
import { type Emit, EXIT, exitCodeFor, type SummaryRow } from "./events.js";
import { Fleet } from "./fleet.js";
import { checkHealth, readState, recordHistory } from "./host-ops.js";
import { clearJournals, describeHolder, isStale, LockError, lockAll, newHolder, unlockAll } from "./lock.js";
import { roll } from "./roll.js";
import type { ServerState } from "./state.js";

export interface RecoverOptions {
  emit: Emit;
  signal: AbortSignal;
  acceptNew?: boolean;
  verbose?: boolean;
  /** Take over a lock held from another machine (its liveness cannot be checked from here). */
  force?: boolean;
}

/**
 * After a deploy or rollback was killed (kill -9, a crashed CI runner): every server it had
 * started to change goes back to the release it served before that command, with the usual
 * drain and gate, and back in rotation; then journals and locks are cleared. Servers an
 * operator drained by hand (no journal) are left as they are.
 */
export async function recover(config: Config, options: RecoverOptions): Promise<number> {
  const { emit, signal } = options;
  const startedAt = Date.now();
  const names = config.servers.map((s) => s.name);
  const fleet = await Fleet.open(config, names, options);
  const hosts = names.map((n) => fleet.host(n));
  const holder = newHolder("recover");
  let locked = false;
  try {
    const states = new Map<string, ServerState>();
    await Promise.all(hosts.map(async (h) => states.set(h.server.name, await readState(h))));

    for (const h of hosts) {
      const lock = states.get(h.server.name)?.lock;
      if (!lock || isStale(lock)) continue;
      const holderHost = safeHolderHost(lock);
      if (holderHost === os.hostname()) {
        throw new LockError(
          `${h.server.name}: ${describeHolder(lock)} is still running; let it finish or stop it first`,
        );
      }
      if (!options.force) {
        throw new LockError(
          `${h.server.name}: locked by ${describeHolder(lock)} on another machine; if that command is dead, run \`nexus recover --force\``,
        );
      }
    }
    await Promise.all(hosts.map((h) => h.session.run(remote.lockBreak(h.layout))));
    await lockAll(hosts, holder, emit);
    locked = true;

    const journaled = hosts.filter((h) => states.get(h.server.name)?.journal);
    if (journaled.length === 0) {
      emit({
        type: "info",
        message: "no interrupted deploy found: nothing to recover (stale locks were cleared)",
      });
      emit({
        type: "summary",
        outcome: "success",
        rows: [],
        exitCode: EXIT.ok,
        seconds: (Date.now() - startedAt) / 1000,
      });
      return EXIT.ok;
    }
    for (const h of journaled) {
      const j = states.get(h.server.name)?.journal;
      emit({
        type: "warn",
        server: h.server.name,
        message: `interrupted ${j?.command ?? "command"} of ${j?.release ?? "?"} (pid ${j?.pid ?? "?"} on ${j?.host ?? "?"}, ${j?.time ?? "?"})`,
      });
    }

    const targetOf = (name: string): string | undefined => {
      const state = states.get(name);
      return state?.journal?.previous ?? state?.current;
    };
    // A server still drained may also have its app stopped or crashed (PM2 gives up after its
    // restarts): it is restarted on its target and gated like the ones that switch.
    const drainedNow = new Set(
      (await fleet.balancer.state(config.servers))
        .filter((b) => b.present && !b.inRotation)
        .map((b) => b.server),
    );
    const toSwitch = journaled.filter((h) => {
      const target = targetOf(h.server.name);
      return target && (target !== states.get(h.server.name)?.current || drainedNow.has(h.server.name));
    });
    emit({
      type: "phase",
      phase: "recover",
      message: `${toSwitch.length} server(s) to put back on their previous release, restarted and gated`,
    });
    const result = await roll({
      config,
      fleet,
      emit,
      signal,
      batches: toSwitch.map((h) => [h.server]),
      target: (name) => targetOf(name) as string,
      fallback: (name) => states.get(name)?.current,
      minInRotation: minInRotation(config),
      onFailure: "halt",
      enableDrained: true,
    });
    const rows = new Map<string, SummaryRow>(result.rows.map((r) => [r.server, { ...r }]));
    for (const r of rows.values()) if (r.result === "deployed") r.result = "restored";

    // Journaled servers that were already on the right release may still be drained.
    const backends = await fleet.balancer.state(config.servers);
    for (const h of journaled) {
      if (rows.has(h.server.name)) continue;
      const row: SummaryRow = {
        server: h.server.name,
        result: "restored",
        release: states.get(h.server.name)?.current,
      };
      rows.set(h.server.name, row);
      const backend = backends.find((b) => b.server === h.server.name);
      if (!backend?.present || backend.inRotation) continue;
      if ((await checkHealth(h, config)).ok) {
        await fleet.balancer.apply({ enable: [h.server] });
        row.note = "was left drained: back in rotation";
      } else {
        row.result = "needs human";
        row.note = "drained, and its current release fails /health";
        emit({ type: "error", server: h.server.name, message: `NEEDS A HUMAN: ${row.note}` });
      }
    }

    const list = [...rows.values()];
    const outcome = list.some((r) => r.result === "needs human") ? "needs-human" : result.outcome;
    await clearJournals(journaled.filter((h) => rows.get(h.server.name)?.result !== "needs human"));
    await Promise.allSettled(
      journaled.map((h) =>
        recordHistory(h, "recover", {
          release: rows.get(h.server.name)?.release ?? null,
          result: rows.get(h.server.name)?.result,
        }),
      ),
    );
    const exitCode = exitCodeFor(outcome);
    emit({ type: "summary", outcome, rows: list, exitCode, seconds: (Date.now() - startedAt) / 1000 });
    return exitCode;
  } finally {
    if (locked) await unlockAll(hosts, holder);
    fleet.close();
  }
}

function safeHolderHost(lock: string): string | undefined {
  try {
    return (JSON.parse(lock) as { host?: string }).host;
  } catch {
    return undefined;
  }
}
