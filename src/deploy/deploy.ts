import { stat } from "node:fs/promises";
import { execa } from "execa";
import { type Artifact, packApp } from "../artifact/pack.js";
import { gitInfo, makeReleaseId } from "../artifact/release-id.js";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import * as remote from "../remote/commands.js";
import { isValidReleaseId } from "../remote/layout.js";
import { SshError } from "../ssh/errors.js";
import { mapSettled } from "../util/map-limit.js";
import { sleep } from "../util/sleep.js";
import { type Emit, EXIT, exitCodeFor, type Outcome, type SummaryRow } from "./events.js";
import { Fleet, type Host } from "./fleet.js";
import { forgetHealthOrigin, readState, recordHistory, stage } from "./host-ops.js";
import { clearJournals, lockAll, newHolder, unlockAll, writeJournals } from "./lock.js";
import { makePlan, PlanError } from "./plan.js";
import { roll } from "./roll.js";
import { releasesToPrune, type ServerState } from "./state.js";

export interface DeployOptions {
  emit: Emit;
  signal: AbortSignal;
  only?: string[];
  releaseId?: string;
  acceptNew?: boolean;
  verbose?: boolean;
  lockWaitMs?: number;
  stageConcurrency?: number;
  /** Kept up to date with the servers out of rotation, for the CLI's second Ctrl-C. */
  inHand?: Set<string>;
  skipUnreachable?: boolean;
}

export interface CommandResult {
  exitCode: number;
  outcome: Outcome;
  release?: string;
}

/** pack → connect → preflight (state, balancer, locks) → stage everywhere → roll → finish. */
export async function deploy(config: Config, options: DeployOptions): Promise<CommandResult> {
  const { emit, signal } = options;
  const startedAt = Date.now();
  if (!(await stat(config.app.root).catch(() => undefined))?.isDirectory()) {
    throw new ConfigError(config.file, [`app.root: ${config.app.root} is not a directory`]);
  }
  const git = await gitInfo(config.app.root);
  const release = options.releaseId ?? makeReleaseId(new Date(), git);
  if (!isValidReleaseId(release))
    throw new PlanError(`--release-id: "${release}" may hold only letters, digits, ".", "_" and "-"`);
  const plan = makePlan(config, release, options.only);
  const names = plan.servers.map((s) => s.name);
  emit({ type: "begin", command: "deploy", release, servers: names });

  const finish = (outcome: Outcome, rows: SummaryRow[], exitCode: number): CommandResult => {
    emit({ type: "summary", outcome, release, rows, exitCode, seconds: (Date.now() - startedAt) / 1000 });
    return { exitCode, outcome, release };
  };
  const notReached = (note?: string): SummaryRow[] =>
    names.map((server) => ({ server, result: "not reached", note }));

  if (config.app.build) {
    emit({ type: "phase", phase: "build", message: config.app.build });
    const built = await execa("sh", ["-c", config.app.build], {
      cwd: config.app.root,
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
    exclude: config.app.exclude,
    include: config.app.include,
    warn: (message) => emit({ type: "warn", message }),
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
  let locked = false;
  try {
    emit({ type: "phase", phase: "preflight", message: "checking servers and the load balancer" });
    const backends = await fleet.balancer.state(config.servers);
    const missing = backends.filter((b) => hosts.some((h) => h.server.name === b.server) && !b.present);
    if (missing.length > 0) {
      throw new PlanError(
        `the upstream file on ${fleet.balancer.host} does not list ${missing.map((b) => `${b.server} (${b.upstream})`).join(", ")}: add them (see \`nexus nginx-config\`) or fix servers[].upstream`,
      );
    }
    await lockAll(hosts, holder, emit, options.lockWaitMs);
    locked = true;
    const states = new Map<string, ServerState>();
    await Promise.all(hosts.map(async (h) => states.set(h.server.name, await readState(h))));
    const clash = hosts.filter((h) => states.get(h.server.name)?.releases.some((r) => r.id === release));
    if (clash.length > 0) {
      throw new PlanError(
        `release ${release} already exists on ${clash.map((h) => h.server.name).join(", ")}: choose another --release-id`,
      );
    }

    if (signal.aborted)
      return finish("interrupted", notReached("interrupted before staging"), EXIT.interrupted);

    emit({ type: "phase", phase: "stage", message: `staging ${release} on ${names.length} server(s)` });
    const staged = await mapSettled(hosts, options.stageConcurrency ?? 4, (h) =>
      stageWithRetry(fleet, h, artifact, release, config, emit),
    );
    const stageFailures = staged.flatMap((r, i) =>
      r.status === "rejected" ? [{ host: hosts[i] as Host, error: r.reason as Error }] : [],
    );
    if (stageFailures.length > 0 || signal.aborted) {
      await fleet.revive(hosts);
      await Promise.allSettled(hosts.map((h) => h.session.exec(remote.removeRelease(h.layout, release))));
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

    await writeJournals(hosts, (h) => ({
      command: "deploy",
      release,
      previous: states.get(h.server.name)?.current ?? null,
    }));
    const result = await roll({
      config,
      fleet,
      emit,
      signal,
      batches: plan.batches,
      canary: plan.canary,
      target: () => release,
      fallback: (name) => states.get(name)?.current,
      minInRotation: plan.minInRotation,
      onFailure: config.rolling.onFailure,
      pauseMs: config.rolling.pause,
      inHand: options.inHand,
    });
    // A server that needs a human keeps its journal, so `nexus recover` knows what it was doing.
    await clearJournals(
      hosts.filter((h) => result.rows.find((r) => r.server === h.server.name)?.result !== "needs human"),
    );
    for (const row of result.rows) {
      if (row.result === "not reached") row.release = states.get(row.server)?.current;
    }
    for (const server of fleet.unreachable) {
      if (names.includes(server))
        result.rows.push({ server, result: "not reached", note: "unreachable (--skip-unreachable)" });
    }

    emit({
      type: "phase",
      phase: "finish",
      message: result.outcome === "success" ? "recording and pruning" : "recording",
    });
    await Promise.allSettled(
      hosts.map(async (h) => {
        const row = result.rows.find((r) => r.server === h.server.name);
        const deployed = row?.result === "deployed";
        await recordHistory(h, "deploy", {
          release,
          previous: states.get(h.server.name)?.current ?? null,
          result: row?.result ?? "unknown",
          commit: git?.commit ?? null,
        });
        if (!deployed && row?.result !== "not reached")
          await h.session.exec(remote.markFailed(h.layout, release));
        if (deployed) await prune(h, config.keepReleases, [release, states.get(h.server.name)?.current]);
      }),
    );

    return finish(result.outcome, result.rows, exitCodeFor(result.outcome));
  } finally {
    if (locked) {
      await fleet.revive(hosts);
      await unlockAll(hosts, holder);
    }
    fleet.close();
    await artifact.dispose();
  }
}

async function prune(host: Host, keep: number, protect: (string | undefined)[]): Promise<void> {
  const state = await readState(host);
  const ids = releasesToPrune(
    state.releases,
    keep,
    [state.current, ...protect].filter((x): x is string => !!x),
  );
  if (ids.length > 0)
    await host.session.exec(ids.map((id) => remote.removeRelease(host.layout, id)).join(" && "));
}

/**
 * Staging touches nothing that serves traffic, so a dropped SSH connection (a flaky link, an sshd
 * restart) is worth one more try on a fresh connection, from a clean slate.
 */
async function stageWithRetry(
  fleet: Fleet,
  host: Host,
  artifact: Artifact,
  release: string,
  config: Config,
  emit: Emit,
): Promise<void> {
  try {
    await stage(host, artifact, release, config, emit);
  } catch (error) {
    if (!(error instanceof SshError) || (error.kind !== "closed" && error.kind !== "network")) throw error;
    emit({
      type: "warn",
      server: host.server.name,
      message: `${error.message}; reconnecting to retry staging once`,
    });
    await sleep(1000);
    const fresh = await fleet.reconnect(host.server.name);
    forgetHealthOrigin(fresh);
    await fresh.session.run(remote.removeRelease(fresh.layout, release), {
      what: "removing the partial release",
    });
    await stage(fresh, artifact, release, config, emit);
  }
}
