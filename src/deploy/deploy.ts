import { assertEntriesShip } from "../artifact/entries.js";
import { type Artifact, appPackOptions, assertAppRoot, packApp } from "../artifact/pack.js";
import { appPackageManager, type PackageManager } from "../artifact/package-manager.js";
import { type GitInfo, gitInfo, makeReleaseId } from "../artifact/release-id.js";
import { ConfigError } from "../config/errors.js";
import { nexusCommand } from "../config/invocation.js";
import { type Config, requireSecrets } from "../config/load.js";
import { EXIT, NexusError } from "../errors.js";
import type { DeployEvent, Emit, Outcome, SummaryRow } from "../events/events.js";
import { isValidReleaseId } from "../remote/layout.js";
import { type RemoteOp, runOp } from "../remote/op.js";
import { markFailed, removeReleases } from "../remote/release.js";
import { checkShared } from "../remote/shared.js";
import { unreachableOverBudget } from "../rollout/budget.js";
import type { FleetOps } from "../rollout/fleet-ops.js";
import type { RollResult } from "../rollout/roll.js";
import { strategyNamed } from "../rollout/strategies.js";
import { startOf } from "../start/load.js";
import { describeStart } from "../start/start.js";
import { mapSettled } from "../util/map-limit.js";
import { BatchWatch } from "./batch-watch.js";
import { buildEnvOptions } from "./build-env.js";
import {
  type CommandResult,
  type RollCommandOptions,
  readStatesToRoll,
  record,
  rollJournaled,
  rollOptions,
  summarize,
  withLocks,
} from "./engine.js";
import { allServers, type Fleet, type Host, withFleet } from "./fleet.js";
import { fleetOps } from "./fleet-ops.js";
import { runLocalHook, runServerHook } from "./hooks.js";
import { type LockHolder, newHolder } from "./lock.js";
import { makePlan, type Plan, PlanError } from "./plan.js";
import { releaseEnv } from "./release-env.js";
import { StageInterrupted, stageWithRetry } from "./stage.js";
import { releasesToPrune, type ServerState } from "./state.js";

/**
 * Servers staged at once: every one of a fleet up to this many (each stages on its own CPU; the
 * CLI keeps ~2 MB of SFTP writes in flight per upload). Four at a time staged 12 servers in three
 * rounds (issue 27).
 */
export const STAGE_AT_ONCE = 16;

export interface DeployOptions extends RollCommandOptions {
  releaseId?: string;
  stageConcurrency?: number;
  skipUnreachable?: boolean;
}

export type { CommandResult } from "./engine.js";

/**
 * `nexus deploy`, as its phases: build → pack and connect → preflight → stage → beforeRoll →
 * roll → record (deployRelease); then afterDeploy or afterFailure, here.
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

/** One deploy as its phases see it: the release, its plan, and how the command ends. */
interface DeployRun {
  config: Config;
  options: DeployOptions;
  release: string;
  git: GitInfo | undefined;
  /** How the servers install the release's dependencies (undefined: the app has no package.json). */
  packageManager: PackageManager | undefined;
  plan: Plan;
  /** The planned servers' names. */
  names: string[];
  /** The summary and the result every way out of the deploy ends with. */
  finish(outcome: Outcome, rows: SummaryRow[], exitCode?: number): CommandResult;
  /** Every planned server, untouched, with a note. */
  notReached(note?: string): SummaryRow[];
}

/** The servers a deploy rolls (those reached), their state read under the lock, and the ops on them. */
interface StagedFleet {
  fleet: Fleet;
  hosts: Host[];
  states: Map<string, ServerState>;
  ops: FleetOps;
}

async function deployRelease(config: Config, options: DeployOptions): Promise<CommandResult> {
  const run = await planDeploy(config, options);
  if (!(await build(run))) return run.finish("failed", run.notReached("build failed"), EXIT.failed);
  return withArtifactAndFleet(run, async (artifact, fleet) => {
    const hosts = reachablePlan(run, fleet);
    assertBudgetHolds(run, fleet);
    const { watch, hookHost } = await preflight(run, fleet, hosts);
    const holder = newHolder("deploy", run.release, config.destination);
    return withLocks(fleet, hosts, holder, options.emit, options.lockWaitMs, async () => {
      const states = await readStatesToRoll(hosts);
      assertNewRelease(run, hosts, states);
      if (options.signal.aborted)
        return run.finish("interrupted", run.notReached("interrupted before staging"), EXIT.interrupted);
      const staged: StagedFleet = {
        fleet,
        hosts,
        states,
        ops: fleetOps(fleet, config, options.emit, states),
      };
      const stopped = (await stage(run, staged, artifact)) ?? (await beforeRoll(run, staged, hookHost));
      if (stopped) return stopped;
      const result = await rollRelease(run, staged, watch);
      // The result is known: say it now; pruning, history and the lock's release follow, one
      // exchange per server (nothing serves traffic differently).
      const done = run.finish(result.outcome, result.rows);
      await recordDeploy(run, staged, result, holder);
      return done;
    });
  });
}

/** The release id, the plan and the `begin` event; a --only or hook setting that cannot work stops here. */
async function planDeploy(config: Config, options: DeployOptions): Promise<DeployRun> {
  const startedAt = Date.now();
  await assertAppRoot(config);
  const git = await gitInfo(config.app.root);
  const release = options.releaseId ?? makeReleaseId(new Date(), git);
  assertReleaseIdFlag(release);
  const packageManager = appPackageManager(config);
  const plan = makePlan(config, release, options.only);
  const names = plan.servers.map((s) => s.name);
  requireSecrets(config, DEPLOY_NEEDS_SECRETS, names);
  const beforeRollOn = config.hooks.beforeRoll ? config.hooks.beforeRollOn : undefined;
  if (beforeRollOn && !names.includes(beforeRollOn)) {
    throw new PlanError(
      `hooks.beforeRollOn: "${beforeRollOn}" is not deployed by this command (--only ${names.join(",")}): the hook runs in the new release`,
    );
  }
  // A start command nexus cannot run without a shell stops here (exit 2), before the build.
  const start = startOf(config);
  const { destination } = config;
  options.emit({
    type: "begin",
    command: "deploy",
    release,
    ...(destination ? { destination } : {}),
    servers: names,
  });
  if (start.spec !== describeStart(start))
    options.emit({ type: "info", message: `start: ${describeStart(start)}` });
  for (const message of start.warnings) options.emit({ type: "warn", message });
  return {
    config,
    options,
    release,
    git,
    packageManager,
    plan,
    names,
    finish: (outcome, rows, exitCode) => summarize(options.emit, startedAt, outcome, rows, release, exitCode),
    notReached: (note) => names.map((server) => ({ server, result: "not reached", note })),
  };
}

/** app.build, in the app root, without the deploy key in its environment; false when it failed. */
async function build({ config, options }: DeployRun): Promise<boolean> {
  if (!config.app.build) return true;
  options.emit({ type: "phase", phase: "build", message: config.app.build });
  const { execa } = await import("execa");
  const built = await execa("sh", ["-c", config.app.build], {
    cwd: config.app.root,
    ...buildEnvOptions(config.ssh),
    reject: false,
    all: true,
  });
  if (built.exitCode === 0) return true;
  options.emit({
    type: "error",
    message: `build failed (exit ${built.exitCode}):\n${String(built.all ?? "")
      .split("\n")
      .slice(-15)
      .join("\n")}`,
  });
  return false;
}

/**
 * Packs the app while every server is connected (not only the deployed ones: the capacity guard
 * checks the others live), runs `body`, then closes the fleet and removes the artifact, on
 * every exit path.
 */
async function withArtifactAndFleet<T>(
  { config, options }: DeployRun,
  body: (artifact: Artifact, fleet: Fleet) => Promise<T>,
): Promise<T> {
  const { emit } = options;
  // Before any server is touched: an entry script left out of the artifact fails every gate.
  await assertEntriesShip(config, { built: true });
  emit({ type: "phase", phase: "pack", message: `packing ${config.app.root}` });
  const packing = packApp(config.app.root, {
    ...appPackOptions(config),
    warn: (message) => emit({ type: "warn", message }),
    inform: (message) => emit({ type: "info", message }),
  });
  // Settled later, whichever way the fleet goes: a failed packing is not left unhandled meanwhile.
  packing.catch(() => {});
  const fleetOptions = {
    emit,
    acceptNew: options.acceptNew,
    verbose: options.verbose,
    skipUnreachable: options.skipUnreachable,
  };
  try {
    return await withFleet(config, allServers(config), fleetOptions, async (fleet) => {
      const artifact = await packing;
      emit({
        type: "info",
        message: `artifact ${(artifact.bytes / 1024 / 1024).toFixed(2)} MB, ${artifact.files} files, sha256 ${artifact.sha256.slice(0, 16)}…`,
      });
      return body(artifact, fleet);
    });
  } finally {
    await packing.then((artifact) => artifact.dispose()).catch(() => {});
  }
}

/** The plan's servers that could be reached (--skip-unreachable leaves the others out of the plan). */
function reachablePlan({ plan }: DeployRun, fleet: Fleet): Host[] {
  if (fleet.unreachable.size > 0) {
    plan.servers = plan.servers.filter((s) => !fleet.unreachable.has(s.name));
    plan.batches = plan.batches
      .map((b) => b.filter((s) => !fleet.unreachable.has(s.name)))
      .filter((b) => b.length > 0);
  }
  return plan.servers.map((s) => fleet.host(s.name));
}

/** --skip-unreachable under rolling.maxFailed: more unreachable servers than the budget stop the deploy here, nothing staged. */
function assertBudgetHolds({ config, names }: DeployRun, fleet: Fleet): void {
  const unreachable = names.filter((name) => fleet.unreachable.has(name));
  const problem = unreachableOverBudget(config.rolling.maxFailed, names.length, unreachable);
  if (problem) throw new NexusError(`${problem}: nothing was changed`, EXIT.failed);
}

/**
 * Before any lock or change: the balancer lists every server deployed, every shared file is in
 * place, beforeRoll's server was reached, and rolling.watch can read the balancer's traffic.
 */
async function preflight(
  { config, options }: DeployRun,
  fleet: Fleet,
  hosts: Host[],
): Promise<{ watch: BatchWatch | undefined; hookHost: Host | undefined }> {
  const beforeRollOn = config.hooks.beforeRoll ? config.hooks.beforeRollOn : undefined;
  // beforeRoll's server: the one named, or the first one deployed that could be reached.
  const hookHost = config.hooks.beforeRoll
    ? hosts.find((h) => h.server.name === (beforeRollOn ?? hosts[0]?.server.name))
    : undefined;
  if (config.hooks.beforeRoll && !hookHost) {
    throw new PlanError(
      `hooks.beforeRollOn: "${beforeRollOn}" is unreachable (--skip-unreachable): the hook must run once, there`,
    );
  }
  options.emit({ type: "phase", phase: "preflight", message: "checking servers and the load balancer" });
  const backends = await fleet.balancer.state(config.servers);
  const missing = backends.filter((b) => hosts.some((h) => h.server.name === b.server) && !b.present);
  if (missing.length > 0) {
    throw new PlanError(
      `the balancer on ${fleet.balancer.host} does not list ${missing.map((b) => `${b.server} (${b.upstream})`).join(", ")}: add them (see \`${nexusCommand("nginx-config")}\` or \`${nexusCommand("haproxy-config")}\`) or fix servers[].upstream`,
    );
  }
  await checkSharedFiles(config, hosts);
  // rolling.watch: the balancer's traffic must be readable, checked before anything changes.
  const watch = await BatchWatch.prepare(config, fleet, options.emit);
  return { watch, hookHost };
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

/** Under the lock: the release id must be new on every server. */
function assertNewRelease({ release }: DeployRun, hosts: Host[], states: Map<string, ServerState>): void {
  const clash = hosts.filter((h) => states.get(h.server.name)?.releases.some((r) => r.id === release));
  if (clash.length > 0) {
    throw new PlanError(
      `release ${release} already exists on ${clash.map((h) => h.server.name).join(", ")}: choose another --release-id`,
    );
  }
}

/**
 * Upload, extract and install on every server at once, touching nothing that serves traffic. A
 * failure (or Ctrl-C) anywhere abandons the staged release everywhere: the result, or undefined
 * when every server is staged.
 */
async function stage(
  run: DeployRun,
  staged: StagedFleet,
  artifact: Artifact,
): Promise<CommandResult | undefined> {
  const { config, options, release, names } = run;
  const { fleet, hosts, states, ops } = staged;
  const { emit, signal } = options;
  emit({ type: "phase", phase: "stage", message: `staging ${release} on ${names.length} server(s)` });
  const { packageManager } = run;
  const input = { artifact, release, config, processes: fleet.processes, emit, signal, packageManager };
  // Each server's restart gets ready as staging begins (the release's files are read only when
  // it runs): once drained, it waits for nothing, and its start-up costs the roll no CPU.
  const strategy = strategyNamed(config.rolling.strategy);
  for (const h of hosts)
    strategy.prepareAhead(ops, config, h.server, release, states.get(h.server.name)?.livePort);
  const results = await mapSettled(hosts, options.stageConcurrency ?? STAGE_AT_ONCE, (h) =>
    stageWithRetry(fleet, h, input),
  );
  const failures = results.flatMap((r, i) =>
    r.status === "rejected" && !(r.reason instanceof StageInterrupted)
      ? [{ host: hosts[i] as Host, error: r.reason as Error }]
      : [],
  );
  if (failures.length === 0 && !signal.aborted) return undefined;
  await abandonStaged(run, staged);
  for (const f of failures) emit({ type: "error", server: f.host.server.name, message: f.error.message });
  const interrupted = signal.aborted && failures.length === 0;
  return run.finish(
    interrupted ? "interrupted" : "failed",
    names.map((server) => ({
      server,
      result: "not reached",
      release: states.get(server)?.current,
      note: failures.some((f) => f.host.server.name === server) ? "staging failed" : "nothing changed",
    })),
    interrupted ? EXIT.interrupted : EXIT.failed,
  );
}

/**
 * hooks.beforeRoll, once, on one server, before any server leaves rotation: a failure leaves
 * every server as it was and abandons the staged release. The result, or undefined to roll on.
 */
async function beforeRoll(
  run: DeployRun,
  staged: StagedFleet,
  hookHost: Host | undefined,
): Promise<CommandResult | undefined> {
  if (!hookHost) return undefined;
  const { config, options, release, names } = run;
  const { emit, signal } = options;
  emit({ type: "phase", phase: "beforeRoll", message: `on ${hookHost.server.name}` });
  const hook = await runServerHook(hookHost, "beforeRoll", config, {
    cwd: hookHost.layout.app(release),
    env: releaseEnv(config, hookHost.server, release),
    emit,
    signal,
  });
  if (hook.ok) return undefined;
  await abandonStaged(run, staged);
  const interrupted = signal.aborted;
  if (!interrupted)
    emit({
      type: "error",
      server: hookHost.server.name,
      message: `hooks.beforeRoll failed (${hook.reason}): no server was drained, the staged release was removed`,
    });
  return run.finish(
    interrupted ? "interrupted" : "failed",
    names.map((server) => ({
      server,
      result: "not reached",
      release: staged.states.get(server)?.current,
      note: interrupted ? "interrupted in beforeRoll: nothing changed" : "beforeRoll failed: nothing changed",
    })),
    interrupted ? EXIT.interrupted : EXIT.failed,
  );
}

/** Nothing was drained: the readied restarts end, and the staged release is removed from every server. */
async function abandonStaged({ release }: DeployRun, { fleet, hosts, ops }: StagedFleet): Promise<void> {
  ops.discardPrepared?.();
  await fleet.revive(hosts);
  await Promise.allSettled(hosts.map((h) => runOp(h.session, removeReleases(h.layout, [release]))));
}

/** Batch by batch, each server from the release it serves to the new one (journaled: `nexus recover`). */
async function rollRelease(
  run: DeployRun,
  staged: StagedFleet,
  watch: BatchWatch | undefined,
): Promise<RollResult> {
  const { config, options, release, plan, names } = run;
  const { fleet, hosts, states, ops } = staged;
  const previous = (name: string) => states.get(name)?.current;
  const result = await rollJournaled(
    hosts,
    (h) => ({ command: "deploy", release, previous: previous(h.server.name) ?? null }),
    rollOptions(config, plan, ops, options, {
      batches: plan.batches,
      canary: plan.canary,
      target: () => release,
      fallback: previous,
      pauseMs: config.rolling.pause,
      watch: watch ? (batch, watchSignal) => watch.reason(batch, watchSignal) : undefined,
      unreachable: names.filter((name) => fleet.unreachable.has(name)),
    }),
  );
  for (const row of result.rows) row.watched = watch?.watched.get(row.server);
  for (const row of result.rows) if (row.result === "not reached") row.release = previous(row.server);
  for (const server of fleet.unreachable) {
    if (names.includes(server))
      result.rows.push({ server, result: "not reached", note: "unreachable (--skip-unreachable)" });
  }
  return result;
}

/**
 * History on every server; old releases pruned where the new one is in, failed ones marked where
 * it is not; the lock released: one exchange per server.
 */
async function recordDeploy(
  run: DeployRun,
  { hosts, states, ops }: StagedFleet,
  result: RollResult,
  holder: LockHolder,
): Promise<void> {
  const { config, release, git } = run;
  const previous = (name: string) => states.get(name)?.current;
  const rowOf = (h: Host) => result.rows.find((r) => r.server === h.server.name);
  await record(
    ops,
    result.touched,
    hosts,
    "deploy",
    (h) => ({
      release,
      previous: previous(h.server.name) ?? null,
      result: rowOf(h)?.result ?? "unknown",
      commit: git?.commit ?? null,
    }),
    {
      unlock: holder,
      first: (h) => {
        const row = rowOf(h);
        if (row?.result === "deployed")
          return prune(h, states.get(h.server.name), config.keepReleases, release, previous(h.server.name));
        // Staged here but never serving (its gate failed, or the roll stopped before this server):
        // marked failed, so that no later `rollback` takes it for a release that once served.
        return [markFailed(h.layout, release)];
      },
    },
  );
}

/**
 * The releases to remove once `release` is deployed, from the state read under the lock: under
 * it, only this command added one (`release`), so no read is needed.
 */
function prune(
  host: Host,
  state: ServerState | undefined,
  keep: number,
  release: string,
  previous: string | undefined,
): RemoteOp<unknown>[] {
  const known = (state?.releases ?? []).filter((r) => r.id !== release);
  const releases = [...known, { id: release, failed: false, stagedAt: Date.now() / 1000 }];
  const ids = releasesToPrune(
    releases,
    keep,
    [release, previous].filter((x): x is string => !!x),
  );
  return ids.length > 0 ? [removeReleases(host.layout, ids)] : [];
}
