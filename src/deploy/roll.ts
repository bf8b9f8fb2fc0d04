import type { Config, ServerConfig } from "../config/load.js";
import * as remote from "../remote/commands.js";
import { capacityProblem } from "./capacity.js";
import type { Emit, Outcome, SummaryRow } from "./events.js";
import type { Fleet } from "./fleet.js";
import { activate } from "./host-ops.js";

export interface RollOptions {
  config: Config;
  fleet: Fleet;
  emit: Emit;
  signal: AbortSignal;
  batches: ServerConfig[][];
  /** The release each server should end on. */
  target: (server: string) => string;
  /** What to go back to if that fails (the release it served before), if any. */
  fallback: (server: string) => string | undefined;
  minInRotation: number;
  onFailure: "rollback-all" | "halt";
}

export interface RollResult {
  outcome: Outcome;
  rows: SummaryRow[];
}

/**
 * Moves the fleet batch by batch: drain (never below the capacity floor), wait for in-flight
 * requests, switch, restart, gate, enable. On a failed gate the batch goes back to its previous
 * release with the same discipline, and so does every server already done under "rollback-all".
 */
export async function roll(options: RollOptions): Promise<RollResult> {
  const { config, fleet, emit, signal } = options;
  const rows = new Map<string, SummaryRow>();
  const out = new Map<string, number>();
  for (const batch of options.batches)
    for (const s of batch) rows.set(s.name, { server: s.name, result: "not reached" });
  const done: ServerConfig[] = [];
  let outcome: Outcome = "success";

  const initiallyDown = new Set(
    (await fleet.balancer.state(config.servers))
      .filter((b) => b.present && !b.inRotation)
      .map((b) => b.server),
  );
  for (const name of initiallyDown) {
    if (rows.has(name))
      emit({
        type: "warn",
        server: name,
        message: "is drained already: it will be deployed and left drained",
      });
  }

  const drain = async (batch: ServerConfig[]) => {
    const live = batch.filter((s) => !initiallyDown.has(s.name));
    for (const s of batch) emit({ type: "step", server: s.name, step: "drain", status: "start" });
    const started = Date.now();
    await fleet.balancer.setDown(live, true);
    for (const s of live) out.set(s.name, Date.now());
    await Promise.all(
      batch.map(async (s) => {
        const { drained, open } = await fleet.balancer.waitDrained(s, config.balancer.drainTimeout);
        if (!drained) {
          emit({
            type: "warn",
            server: s.name,
            message: `${open} connection(s) still open after the drain timeout; going on`,
          });
        }
        emit({ type: "step", server: s.name, step: "drain", status: "done", ms: Date.now() - started });
      }),
    );
  };

  const enable = async (batch: ServerConfig[]) => {
    const live = batch.filter((s) => !initiallyDown.has(s.name));
    for (const s of batch) emit({ type: "step", server: s.name, step: "enable", status: "start" });
    const started = Date.now();
    await fleet.balancer.setDown(live, false);
    for (const s of batch) {
      const since = out.get(s.name);
      if (since !== undefined) {
        const row = rows.get(s.name);
        if (row) row.outOfRotation = (row.outOfRotation ?? 0) + (Date.now() - since) / 1000;
        out.delete(s.name);
      }
      emit({ type: "step", server: s.name, step: "enable", status: "done", ms: Date.now() - started });
    }
  };

  /** Puts drained servers back on their fallback release; returns those that could not be restored. */
  const restore = async (
    batch: ServerConfig[],
    result: "rolled back" | "restored",
  ): Promise<ServerConfig[]> => {
    const stuck: ServerConfig[] = [];
    const healthy: ServerConfig[] = [];
    await Promise.all(
      batch.map(async (s) => {
        const host = fleet.host(s.name);
        const previous = options.fallback(s.name);
        const row = rows.get(s.name) ?? { server: s.name, result };
        rows.set(s.name, row);
        if (!previous) {
          await host.session.exec(remote.pm2Stop(config.pm2.name));
          row.result = "failed";
          row.release = undefined;
          row.note = "no previous release to go back to: the app was stopped";
          healthy.push(s);
          return;
        }
        emit({
          type: "step",
          server: s.name,
          step: "restore",
          status: "start",
          message: `back to ${previous}`,
        });
        try {
          const { gate } = await activate(host, previous, config, emit);
          if (gate.ok) {
            row.result = result;
            row.release = previous;
            healthy.push(s);
            emit({ type: "step", server: s.name, step: "restore", status: "done", message: previous });
            return;
          }
          row.note = `previous release ${previous} failed its gate too: ${gate.reason}`;
        } catch (error) {
          row.note = `restoring ${previous} failed: ${(error as Error).message}`;
        }
        row.result = "needs human";
        stuck.push(s);
        emit({ type: "step", server: s.name, step: "restore", status: "fail", message: row.note });
        emit({ type: "error", server: s.name, message: `NEEDS A HUMAN: left drained. ${row.note}` });
      }),
    );
    if (healthy.length > 0) await enable(healthy);
    return stuck;
  };

  let failure = false;
  for (const [index, batch] of options.batches.entries()) {
    if (signal.aborted) {
      outcome = "interrupted";
      break;
    }
    const names = batch.map((s) => s.name).join(", ");
    emit({ type: "phase", phase: "roll", message: `batch ${index + 1}/${options.batches.length}: ${names}` });

    const capacity = await capacityProblem(
      config,
      fleet,
      batch.map((s) => s.name),
      options.minInRotation,
    );
    if (capacity) {
      emit({ type: "error", message: `capacity guard: ${capacity}` });
      for (const s of batch) {
        const row = rows.get(s.name);
        if (row) row.note = "not drained: capacity guard";
      }
      failure = true;
      break;
    }

    await drain(batch);
    const results = await Promise.all(
      batch.map(async (s) => {
        try {
          return (await activate(fleet.host(s.name), options.target(s.name), config, emit, signal)).gate.ok;
        } catch (error) {
          emit({ type: "error", server: s.name, message: (error as Error).message });
          return false;
        }
      }),
    );
    const passed = batch.filter((_, i) => results[i]);
    const failed = batch.filter((_, i) => !results[i]);
    if (failed.length === 0) {
      await enable(batch);
      for (const s of batch) {
        const row = rows.get(s.name);
        if (row) {
          row.result = "deployed";
          row.release = options.target(s.name);
        }
        done.push(s);
      }
      continue;
    }

    failure = true;
    if (signal.aborted) outcome = "interrupted";
    for (const s of failed) {
      const row = rows.get(s.name);
      if (row) row.note = signal.aborted ? "interrupted during the gate" : "failed its health gate";
    }
    if (options.onFailure === "halt") {
      await enable(passed);
      for (const s of passed) {
        const row = rows.get(s.name);
        if (row) {
          row.result = "deployed";
          row.release = options.target(s.name);
        }
      }
      await restore(failed, "restored");
    } else {
      await restore([...failed, ...passed], "rolled back");
    }
    break;
  }

  if (failure && options.onFailure === "rollback-all" && done.length > 0 && outcome !== "interrupted") {
    emit({ type: "phase", phase: "rollback", message: `rolling back ${done.map((s) => s.name).join(", ")}` });
    const size = Math.max(1, options.batches[0]?.length ?? 1);
    for (let i = 0; i < done.length; i += size) {
      const batch = done.slice(i, i + size);
      await drain(batch);
      await restore(batch, "rolled back");
    }
  }

  const list = [...rows.values()];
  if (list.some((r) => r.result === "needs human")) outcome = "needs-human";
  else if (outcome !== "interrupted" && failure) outcome = "failed";
  return { outcome, rows: list };
}
