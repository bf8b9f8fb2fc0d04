import type { Config, ServerConfig } from "../config/load.js";
import * as remote from "../remote/commands.js";
import { sleep } from "../util/sleep.js";
import type { BatchWatch } from "../watch/index.js";
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
  /** The first batch is a canary: a failure there stops the rollout before any other server. */
  canary?: boolean;
  /** The release each server should end on. */
  target: (server: string) => string;
  /** What to go back to if that fails (the release it served before), if any. */
  fallback: (server: string) => string | undefined;
  minInRotation: number;
  onFailure: "rollback-all" | "halt";
  pauseMs?: number;
  /**
   * Servers drained before this command are normally deployed and left drained (an operator
   * took them out). `nexus recover` sets this to put them back in rotation.
   */
  enableDrained?: boolean;
  /** Kept up to date with the servers out of rotation right now, for a second Ctrl-C. */
  inHand?: Set<string>;
  /** rolling.watch (deploy only): the error-rate watch after each batch is back in rotation. */
  watch?: BatchWatch;
}

export interface RollResult {
  outcome: Outcome;
  rows: SummaryRow[];
}

/**
 * Moves the fleet batch by batch: drain (never below the capacity floor), wait for in-flight
 * requests, switch, restart, gate, enable. On a failed gate the batch goes back to its previous
 * release with the same discipline, and so does every server already done under "rollback-all".
 * An interruption (Ctrl-C) lets the batch in hand finish or be restored, then stops.
 */
export async function roll(options: RollOptions): Promise<RollResult> {
  const { config, fleet, emit, signal } = options;
  const inHand = options.inHand ?? new Set<string>();
  const rows = new Map<string, SummaryRow>();
  const out = new Map<string, number>();
  for (const batch of options.batches) {
    for (const s of batch) rows.set(s.name, { server: s.name, result: "not reached" });
  }
  const row = (name: string): SummaryRow => {
    let r = rows.get(name);
    if (!r) {
      r = { server: name, result: "not reached" };
      rows.set(name, r);
    }
    return r;
  };
  const done: ServerConfig[] = [];

  const initiallyDown = new Set(
    (await fleet.balancer.state(config.servers))
      .filter((b) => b.present && !b.inRotation)
      .map((b) => b.server),
  );
  const leaveDrained = (name: string) => initiallyDown.has(name) && !options.enableDrained;
  for (const name of initiallyDown) {
    if (rows.has(name) && leaveDrained(name)) {
      emit({
        type: "warn",
        server: name,
        message: "was drained before this command: it is updated and left drained",
      });
    }
  }

  const drain = async (batch: ServerConfig[]) => {
    const live = batch.filter((s) => !initiallyDown.has(s.name));
    for (const s of batch) {
      emit({ type: "step", server: s.name, step: "drain", status: "start" });
      inHand.add(s.name);
    }
    const started = Date.now();
    await fleet.balancer.apply({ drain: live });
    for (const s of live) out.set(s.name, Date.now());
    await Promise.all(
      batch.map(async (s) => {
        const { drained, open } = await fleet.balancer.waitDrained(s, config.balancer.drainTimeout);
        if (!drained) {
          emit({
            type: "warn",
            server: s.name,
            message: `${open} connection(s) or old Nginx worker(s) still busy after the drain timeout; going on`,
          });
        }
        emit({ type: "step", server: s.name, step: "drain", status: "done", ms: Date.now() - started });
      }),
    );
  };

  /** Back in rotation; a balancer failure here leaves the servers drained and needing a human. */
  const enable = async (batch: ServerConfig[]): Promise<boolean> => {
    if (batch.length === 0) return true;
    const live = batch.filter((s) => !leaveDrained(s.name));
    for (const s of batch) emit({ type: "step", server: s.name, step: "enable", status: "start" });
    const started = Date.now();
    try {
      await fleet.balancer.apply({ enable: live });
    } catch (error) {
      for (const s of batch) {
        const r = row(s.name);
        r.result = "needs human";
        r.note = `left out of rotation: enabling it failed: ${(error as Error).message.split("\n")[0]}`;
        emit({
          type: "step",
          server: s.name,
          step: "enable",
          status: "fail",
          message: (error as Error).message,
        });
        emit({ type: "error", server: s.name, message: `NEEDS A HUMAN: ${r.note}` });
      }
      return false;
    }
    for (const s of batch) {
      const since = out.get(s.name);
      if (since !== undefined && live.includes(s)) {
        const r = row(s.name);
        r.outOfRotation = (r.outOfRotation ?? 0) + (Date.now() - since) / 1000;
        out.delete(s.name);
      }
      inHand.delete(s.name);
      emit({ type: "step", server: s.name, step: "enable", status: "done", ms: Date.now() - started });
    }
    return true;
  };

  /** Puts drained servers back on their fallback release and in rotation. */
  const restore = async (batch: ServerConfig[], result: "rolled back" | "restored"): Promise<void> => {
    const healthy: ServerConfig[] = [];
    await Promise.all(
      batch.map(async (s) => {
        // A connection lost during the step it failed in is opened again for the restore.
        await fleet.revive([fleet.host(s.name)]);
        const host = fleet.host(s.name);
        const previous = options.fallback(s.name);
        const r = row(s.name);
        if (!previous) {
          await host.session.exec(remote.pm2Stop(config.pm2.name));
          r.result = "failed";
          r.release = undefined;
          r.note = "no previous release to go back to: the app was stopped";
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
            r.result = result;
            r.release = previous;
            healthy.push(s);
            emit({ type: "step", server: s.name, step: "restore", status: "done", message: previous });
            return;
          }
          r.note = `previous release ${previous} failed its gate too: ${gate.reason}`;
        } catch (error) {
          r.note = `restoring ${previous} failed: ${(error as Error).message}`;
        }
        r.result = "needs human";
        emit({ type: "step", server: s.name, step: "restore", status: "fail", message: r.note });
        emit({ type: "error", server: s.name, message: `NEEDS A HUMAN: left drained. ${r.note}` });
      }),
    );
    await enable(healthy);
  };

  let failure = false;
  let interrupted = false;
  for (const [index, batch] of options.batches.entries()) {
    if (signal.aborted) {
      interrupted = true;
      break;
    }
    if (index > 0 && options.pauseMs) {
      emit({ type: "info", message: `pausing ${options.pauseMs / 1000}s before the next batch` });
      await sleep(options.pauseMs, signal);
      if (signal.aborted) {
        interrupted = true;
        break;
      }
    }
    const names = batch.map((s) => s.name).join(", ");
    const label = options.canary && index === 0 ? "canary" : `batch ${index + 1}/${options.batches.length}`;
    emit({ type: "phase", phase: "roll", message: `${label}: ${names}` });

    const capacity = await capacityProblem(
      config,
      fleet,
      batch.map((s) => s.name),
      options.minInRotation,
    );
    if (capacity) {
      emit({ type: "error", message: `capacity guard: ${capacity}` });
      for (const s of batch) row(s.name).note = "not drained: capacity guard";
      failure = true;
      break;
    }

    try {
      await drain(batch);
    } catch (error) {
      // The balancer driver restores the upstream file when a test or reload fails: the batch
      // is still in rotation on its old release.
      emit({ type: "error", message: `draining ${names} failed: ${(error as Error).message}` });
      for (const s of batch) {
        row(s.name).note = "not drained: the balancer refused the change";
        inHand.delete(s.name);
      }
      failure = true;
      break;
    }
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
    const markDeployed = (servers: ServerConfig[]) => {
      for (const s of servers) {
        const r = row(s.name);
        if (r.result === "needs human") continue;
        r.result = "deployed";
        r.release = options.target(s.name);
        done.push(s);
      }
    };
    if (failed.length === 0) {
      const enabled = await enable(batch);
      markDeployed(batch);
      if (!enabled) {
        failure = true;
        break;
      }
      // ---- WATCH (issue 16): the one call into src/watch; the lead ports it into the new engine ----
      // The batch is back in rotation: watch its error rate before the next batch is drained. A
      // breach (or Ctrl-C) is handled like a failed gate: drained, back to its previous release,
      // and under rollback-all every server already done follows.
      if (options.watch) {
        const verdict = await options.watch.window(batch, signal);
        for (const [name, watched] of verdict.watched) row(name).watched = watched;
        if (verdict.outcome !== "pass") {
          failure = true;
          interrupted = verdict.outcome === "interrupted";
          const back =
            options.onFailure === "halt" && !interrupted
              ? batch.filter((s) => verdict.breached.has(s.name))
              : batch;
          for (const s of back) {
            if (done.includes(s)) done.splice(done.indexOf(s), 1);
            row(s.name).note =
              verdict.breached.get(s.name) ??
              (interrupted ? "interrupted during its watch" : "its batch failed the watch");
          }
          try {
            await drain(back);
            await restore(back, interrupted || options.onFailure === "halt" ? "restored" : "rolled back");
          } catch (error) {
            for (const s of back) {
              const r = row(s.name);
              r.result = "needs human";
              r.note = `still on ${options.target(s.name)}: draining it after the watch failed: ${(error as Error).message.split("\n")[0]}`;
              emit({ type: "error", server: s.name, message: `NEEDS A HUMAN: ${r.note}` });
            }
          }
          break;
        }
      }
      // ---- end WATCH ----
      continue;
    }

    failure = true;
    interrupted = signal.aborted;
    for (const s of failed) {
      row(s.name).note = signal.aborted
        ? "interrupted before its gate passed"
        : options.canary && index === 0
          ? "canary failed its health gate"
          : "failed its health gate";
    }
    if (options.onFailure === "halt" || interrupted) {
      // Verified servers keep the new release; only the failed ones go back.
      await enable(passed);
      markDeployed(passed);
      await restore(failed, "restored");
    } else {
      await restore([...failed, ...passed], "rolled back");
    }
    break;
  }

  if (failure && !interrupted && options.onFailure === "rollback-all" && done.length > 0) {
    emit({ type: "phase", phase: "rollback", message: `rolling back ${done.map((s) => s.name).join(", ")}` });
    const size = Math.max(1, ...options.batches.map((b) => b.length));
    for (let i = 0; i < done.length; i += size) {
      if (signal.aborted) {
        // Interrupted during the rollback: the batch in hand was restored; the rest stays on the
        // new release, which passed its gate, and the summary says so.
        interrupted = true;
        for (const s of done.slice(i)) row(s.name).note = "interrupted: still on the new release";
        break;
      }
      const batch = done.slice(i, i + size);
      try {
        await drain(batch);
      } catch (error) {
        for (const s of batch) {
          const r = row(s.name);
          r.result = "needs human";
          r.note = `still on ${options.target(s.name)}: draining it for the rollback failed`;
          emit({
            type: "error",
            server: s.name,
            message: `NEEDS A HUMAN: ${r.note}: ${(error as Error).message}`,
          });
        }
        continue;
      }
      await restore(batch, "rolled back");
    }
  }

  // So that PM2 resurrects what each server runs now after a reboot; outside any drain window.
  const touched = [...rows.values()]
    .filter((r) => r.result !== "not reached")
    .map((r) => fleet.host(r.server));
  await Promise.allSettled(touched.map((h) => h.session.exec(remote.pm2Save())));

  const list = [...rows.values()];
  let outcome: Outcome = "success";
  if (list.some((r) => r.result === "needs human")) outcome = "needs-human";
  else if (interrupted) outcome = "interrupted";
  else if (failure) outcome = "failed";
  return { outcome, rows: list };
}
