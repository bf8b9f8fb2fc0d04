import { type Artifact, appPackOptions, assertAppRoot, packApp } from "../artifact/pack.js";
import { gitInfo, makeReleaseId } from "../artifact/release-id.js";
import { ConfigError } from "../config/errors.js";
import { type Config, requireSecrets } from "../config/load.js";
import { EXIT } from "../errors.js";
import type { DeployEvent, Emit, Outcome, SummaryRow } from "../events/events.js";
import { isValidReleaseId } from "../remote/layout.js";
import { runOp } from "../remote/op.js";
import { markFailed, removeReleases } from "../remote/release.js";
import { checkShared } from "../remote/shared.js";
import { mapSettled } from "../util/map-limit.js";
import { BatchWatch } from "./batch-watch.js";
import { buildEnvOptions } from "./build-env.js";
import {
  type CommandResult,
  type RollCommandOptions,
  readStatesToRoll,
  recordAll,
  rollJournaled,
  summarize,
  withLocks,
} from "./engine.js";
import { Fleet, type Host } from "./fleet.js";
import { fleetOps } from "./fleet-ops.js";
import { runLocalHook, runServerHook } from "./hooks.js";
import { newHolder } from "./lock.js";
import { makePlan, PlanError } from "./plan.js";
import { releaseEnv } from "./release-env.js";
import { StageInterrupted, stageWithRetry } from "./stage.js";
import { readState, releasesToPrune } from "./state.js";

export interface DeployOptions extends RollCommandOptions {
  releaseId?: string;
  stageConcurrency?: number;
  skipUnreachable?: boolean;
}

export type { CommandResult } from "./engine.js";

/**
 * pack → connect → preflight (state, balancer, shared files, locks) → stage everywhere →
 * beforeRoll → roll → finish; then afterDeploy or afterFailure, here.
 */
export async function deploy(config: Config, options: DeployOptions): Promise<CommandResult> {
  let summary: Extract<DeployEvent, { type: "summary" }> | undefined;
  const emit: Emit = (event) => {
    if (event.type === "summary") summary = event;
    options.emit(event);
  };
  const notify = async (release: string, result: string, details: unknown) => {
    const hook = result === "success" ? "afterDeploy" : "afterFailure";
    const { signal } = options;
    const ran = await runLocalHook(hook, config, {
      release,
      result,
      summary: details,
      emit,
      signal: signal.aborted ? undefined : signal,
    });
    if (!ran.ok)
      emit({ type: "warn", message: `hooks.${hook} failed (${ran.reason}): the deploy result stands` });
  };
  let result: CommandResult;
  try {
    result = await deployRelease(config, { ...options, emit });
  } catch (error) {
    if (summary === undefined && !(error instanceof ConfigError) && !(error instanceof PlanError)) {
      await notify(options.releaseId ?? "", "error", { error: (error as Error).message });
    }
    throw error;
  }
  if (summary) {
    const { type: _type, ...details } = summary;
    await notify(result.release ?? "", result.outcome, details);
  }
  return result;
}

/** Why a deploy needs every fromEnv secret (the message of `requireSecrets`). */
export const DEPLOY_NEEDS_SECRETS = "deploy writes it into the app's environment";

/** A --release-id becomes a directory name on every server: a usage error (exit 2) otherwise. */
export function assertReleaseIdFlag(release: string): void {
  if (!isValidReleaseId(release))
    throw new PlanError(`--release-id: "${release}" may hold only letters, digits, ".", "_" and "-"`);
}

async function deployRelease(config: Config, options: DeployOptions): Promise<CommandResult> {
  const { emit, signal } = options;
  const startedAt = Date.now();
  await assertAppRoot(config);
  const git = await gitInfo(config.app.root);
  const release = options.releaseId ?? makeReleaseId(new Date(), git);
  assertReleaseIdFlag(release);
  const plan = makePlan(config, release, options.only);
  const names = plan.servers.map((s) => s.name);
  requireSecrets(config, DEPLOY_NEEDS_SECRETS, names);
  const beforeRollOn = config.hooks.beforeRoll ? config.hooks.beforeRollOn : undefined;
  if (beforeRollOn && !names.includes(beforeRollOn)) {
    throw new PlanError(
      `hooks.beforeRollOn: "${beforeRollOn}" is not deployed by this command (--only ${names.join(",")}): the hook runs in the new release`,
    );
  }
  emit({ type: "begin", command: "deploy", release, servers: names });

  const finish = (outcome: Outcome, rows: SummaryRow[], exitCode?: number): CommandResult =>
    summarize(emit, startedAt, outcome, rows, release, exitCode);
  const notReached = (note?: string): SummaryRow[] =>
    names.map((server) => ({ server, result: "not reached", note }));

  if (config.app.build) {
    emit({ type: "phase", phase: "build", message: config.app.build });
    const { execa } = await import("execa");
    const built = await execa("sh", ["-c", config.app.build], {
      cwd: config.app.root,
      ...buildEnvOptions(config.ssh),
      reject: false,
      all: true,
    });
    if (built.exitCode !== 0) {
      emit({
        type: "error",
        message: `build failed (exit ${built.exitCode}):\n${String(built.all ?? "")
          .split("\n")
          .slice(-15)
          .join("\n")}`,
      });
      return finish("failed", notReached("build failed"), EXIT.failed);
    }
  }

  emit({ type: "phase", phase: "pack", message: `packing ${config.app.root}` });
  const packing = packApp(config.app.root, {
    ...appPackOptions(config),
    warn: (message) => emit({ type: "warn", message }),
    inform: (message) => emit({ type: "info", message }),
  });
  // Every server is connected, not only the deployed ones: the capacity guard checks the others live.
  const opening = Fleet.open(
    config,
    config.servers.map((s) => s.name),
    {
      emit,
      acceptNew: options.acceptNew,
      verbose: options.verbose,
      skipUnreachable: options.skipUnreachable,
    },
  );
  let artifact: Artifact;
  let fleet: Fleet;
  try {
    [artifact, fleet] = await Promise.all([packing, opening]);
  } catch (error) {
    await packing.then((a) => a.dispose()).catch(() => {});
    await opening.then((f) => f.close()).catch(() => {});
    throw error;
  }
  emit({
    type: "info",
    message: `artifact ${(artifact.bytes / 1024 / 1024).toFixed(2)} MB, ${artifact.files} files, sha256 ${artifact.sha256.slice(0, 16)}…`,
  });

  const hosts = plan.servers.filter((s) => !fleet.unreachable.has(s.name)).map((s) => fleet.host(s.name));
  if (fleet.unreachable.size > 0) {
    plan.servers = plan.servers.filter((s) => !fleet.unreachable.has(s.name));
    plan.batches = plan.batches
      .map((b) => b.filter((s) => !fleet.unreachable.has(s.name)))
      .filter((b) => b.length > 0);
  }
  const holder = newHolder("deploy", release);
  try {
    // beforeRoll's server: the one named, or the first one deployed that could be reached.
    const hookHost = config.hooks.beforeRoll
      ? hosts.find((h) => h.server.name === (beforeRollOn ?? hosts[0]?.server.name))
      : undefined;
    if (config.hooks.beforeRoll && !hookHost) {
      throw new PlanError(
        `hooks.beforeRollOn: "${beforeRollOn}" is unreachable (--skip-unreachable): the hook must run once, there`,
      );
    }
    emit({ type: "phase", phase: "preflight", message: "checking servers and the load balancer" });
    const backends = await fleet.balancer.state(config.servers);
    const missing = backends.filter((b) => hosts.some((h) => h.server.name === b.server) && !b.present);
    if (missing.length > 0) {
      throw new PlanError(
        `the balancer on ${fleet.balancer.host} does not list ${missing.map((b) => `${b.server} (${b.upstream})`).join(", ")}: add them (see \`nexus nginx-config\` or \`nexus haproxy-config\`) or fix servers[].upstream`,
      );
    }
    await checkSharedFiles(config, hosts);
    // rolling.watch: the access log must carry the upstream fields, checked before anything changes.
    const watch = await BatchWatch.prepare(config, fleet, emit);
    return await withLocks(fleet, hosts, holder, emit, options.lockWaitMs, async () => {
      const states = await readStatesToRoll(hosts);
      const clash = hosts.filter((h) => states.get(h.server.name)?.releases.some((r) => r.id === release));
      if (clash.length > 0) {
        throw new PlanError(
          `release ${release} already exists on ${clash.map((h) => h.server.name).join(", ")}: choose another --release-id`,
        );
      }
      if (signal.aborted)
        return finish("interrupted", notReached("interrupted before staging"), EXIT.interrupted);

      emit({ type: "phase", phase: "stage", message: `staging ${release} on ${names.length} server(s)` });
      const input = { artifact, release, config, processes: fleet.processes, emit, signal };
      const ops = fleetOps(fleet, config, emit);
      // Each server's restart gets ready as staging begins (the release's files are read only when
      // it runs): once drained, it waits for nothing, and its start-up costs the roll no CPU.
      for (const h of hosts) ops.prepare?.(h.server, release);
      const staged = await mapSettled(hosts, options.stageConcurrency ?? 4, (h) =>
        stageWithRetry(fleet, h, input),
      );
      const stageFailures = staged.flatMap((r, i) =>
        r.status === "rejected" && !(r.reason instanceof StageInterrupted)
          ? [{ host: hosts[i] as Host, error: r.reason as Error }]
          : [],
      );
      if (stageFailures.length > 0 || signal.aborted) {
        ops.discardPrepared?.();
        await fleet.revive(hosts);
        await Promise.allSettled(hosts.map((h) => runOp(h.session, removeReleases(h.layout, [release]))));
        for (const f of stageFailures)
          emit({ type: "error", server: f.host.server.name, message: f.error.message });
        const interrupted = signal.aborted && stageFailures.length === 0;
        return finish(
          interrupted ? "interrupted" : "failed",
          names.map((server) => ({
            server,
            result: "not reached",
            release: states.get(server)?.current,
            note: stageFailures.some((f) => f.host.server.name === server)
              ? "staging failed"
              : "nothing changed",
          })),
          interrupted ? EXIT.interrupted : EXIT.failed,
        );
      }

      const previous = (name: string) => states.get(name)?.current;
      if (hookHost) {
        // Once, before any server leaves rotation: a failure leaves every server as it was.
        emit({ type: "phase", phase: "beforeRoll", message: `on ${hookHost.server.name}` });
        const hook = await runServerHook(hookHost, "beforeRoll", config, {
          cwd: hookHost.layout.release(release),
          env: releaseEnv(config, hookHost.server, release),
          emit,
          signal,
        });
        if (!hook.ok) {
          ops.discardPrepared?.();
          await fleet.revive(hosts);
          await Promise.allSettled(hosts.map((h) => runOp(h.session, removeReleases(h.layout, [release]))));
          const interrupted = signal.aborted;
          if (!interrupted)
            emit({
              type: "error",
              server: hookHost.server.name,
              message: `hooks.beforeRoll failed (${hook.reason}): no server was drained, the staged release was removed`,
            });
          return finish(
            interrupted ? "interrupted" : "failed",
            names.map((server) => ({
              server,
              result: "not reached",
              release: previous(server),
              note: interrupted
                ? "interrupted in beforeRoll: nothing changed"
                : "beforeRoll failed: nothing changed",
            })),
            interrupted ? EXIT.interrupted : EXIT.failed,
          );
        }
      }
      const result = await rollJournaled(
        hosts,
        (h) => ({ command: "deploy", release, previous: previous(h.server.name) ?? null }),
        {
          config,
          ops,
          emit,
          signal,
          batches: plan.batches,
          canary: plan.canary,
          target: () => release,
          fallback: previous,
          minInRotation: plan.minInRotation,
          onFailure: config.rolling.onFailure,
          pauseMs: config.rolling.pause,
          inHand: options.inHand,
          watch: watch ? (batch, watchSignal) => watch.reason(batch, watchSignal) : undefined,
        },
      );
      for (const row of result.rows) row.watched = watch?.watched.get(row.server);
      for (const row of result.rows) if (row.result === "not reached") row.release = previous(row.server);
      for (const server of fleet.unreachable) {
        if (names.includes(server))
          result.rows.push({ server, result: "not reached", note: "unreachable (--skip-unreachable)" });
      }

      // The result is known: say it now; history and pruning follow (nothing serves traffic differently).
      const done = finish(result.outcome, result.rows);
      const rowOf = (h: Host) => result.rows.find((r) => r.server === h.server.name);
      await Promise.allSettled([
        ops.persist(result.touched),
        recordAll(hosts, "deploy", (h) => ({
          release,
          previous: previous(h.server.name) ?? null,
          result: rowOf(h)?.result ?? "unknown",
          commit: git?.commit ?? null,
        })),
        ...hosts.map(async (h) => {
          const row = rowOf(h);
          if (row?.result === "deployed")
            await prune(h, config.keepReleases, [release, previous(h.server.name)]);
          else if (row && row.result !== "not reached") await runOp(h.session, markFailed(h.layout, release));
        }),
      ]);
      return done;
    });
  } finally {
    await fleet.close();
    await artifact.dispose();
  }
}

/** Preflight: every shared file must be on every server before anything is staged or drained. */
async function checkSharedFiles(config: Config, hosts: Host[]): Promise<void> {
  if (config.shared.files.length === 0) return;
  const missing = await Promise.all(
    hosts.map(async (h) => ({
      host: h,
      files: await runOp(h.session, checkShared(h.layout, config.shared)),
    })),
  );
  const problems = missing
    .filter((m) => m.files.length > 0)
    .map((m) => `${m.host.server.name}: ${m.files.map((f) => `${m.host.layout.shared}/${f}`).join(", ")}`);
  if (problems.length > 0) {
    throw new PlanError(
      `shared file(s) missing (shared.files; nexus never creates them: put them there first):\n  ${problems.join("\n  ")}`,
    );
  }
}

async function prune(host: Host, keep: number, protect: (string | undefined)[]): Promise<void> {
  const state = await readState(host);
  const ids = releasesToPrune(
    state.releases,
    keep,
    [state.current, ...protect].filter((x): x is string => !!x),
  );
  if (ids.length > 0) await runOp(host.session, removeReleases(host.layout, ids));
}
