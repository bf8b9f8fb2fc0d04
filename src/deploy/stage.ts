import type { Artifact } from "../artifact/pack.js";
import type { PackageManager } from "../artifact/package-manager.js";
import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import type { ProcessManager } from "../process/process-manager.js";
import { runOp } from "../remote/op.js";
import {
  extract,
  type InstallOutcome,
  install,
  prepare,
  removeReleases,
  stopStrays,
} from "../remote/release.js";
import { linkShared } from "../remote/shared.js";
import { SshError } from "../ssh/errors.js";
import { transferArtifact } from "../transfer/transfer.js";
import { sleep } from "../util/sleep.js";
import type { Fleet, Host } from "./fleet.js";
import { releaseEnv } from "./release-env.js";
import { timed } from "./timed.js";

export interface StageInput {
  artifact: Artifact;
  release: string;
  config: Config;
  processes: ProcessManager;
  emit: Emit;
  /** How the release's dependencies are installed (undefined: the app has no package.json). */
  packageManager?: PackageManager;
  /** Ctrl-C: the step in flight on a server ends, no further step starts. */
  signal?: AbortSignal;
}

/** Staging stopped between two steps because the command was interrupted. */
export class StageInterrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

/** Upload, verify, extract, write the process file, install dependencies. Touches nothing that serves traffic. */
export async function stage(host: Host, input: StageInput): Promise<void> {
  const { artifact, release, config, emit } = input;
  const { session, layout: l, server } = host;
  const name = server.name;
  const goOn = () => {
    if (input.signal?.aborted) throw new StageInterrupted();
  };
  goOn();
  // SFTP's subsystem opens while the deploy path is prepared: its round trips cost no time.
  if (config.transfer.method !== "http") session.warmUpload();
  await runOp(session, prepare(l, { clearIncoming: true }));

  const archive = `${l.incoming}/${release}.tar.gz`;
  // SFTP, else HTTP; resolves once the server has checked the sha256 (a bad file is removed).
  await timed(emit, name, "upload", async () => {
    try {
      return await transferArtifact(host, artifact, archive, {
        ...config.transfer,
        emit,
        signal: input.signal,
      });
    } catch (error) {
      // Cut short by Ctrl-C (an upload of minutes would otherwise run on): staging stopped.
      if (input.signal?.aborted) throw new StageInterrupted();
      throw error;
    }
  });
  goOn();
  await timed(emit, name, "extract", async () => {
    await runOp(session, extract(l, archive, release, artifact.sha256));
    const { files, dirs } = config.shared;
    if (files.length + dirs.length === 0) return undefined;
    // Before install, so that install scripts see the shared config too.
    const { replaced } = await runOp(session, linkShared(l, release, config.shared));
    if (replaced.length > 0) {
      emit({
        type: "warn",
        server: name,
        message: `the artifact holds ${replaced.join(", ")}, a shared path: replaced by the link to ${l.shared}`,
      });
    }
    return `${files.length + dirs.length} shared path(s) linked`;
  });
  goOn();
  await timed(emit, name, "install", async () => {
    // Ctrl-C reaches npm on the server (minutes, sometimes): it stops, and staging with it.
    const outcome = await runOp(session, install(l, release, input.packageManager), {
      signal: input.signal,
    }).catch((error) => {
      if (input.signal?.aborted) throw new StageInterrupted();
      throw error;
    });
    // After the install: a dependency's binary is found in the installed release.
    const file = input.processes.processFile(l, {
      release,
      cwd: l.app(release),
      env: releaseEnv(config, server, release),
    });
    const starts = await runOp(session, file.write);
    return [installNote(outcome, input.packageManager), starts && `starts ${starts}`]
      .filter(Boolean)
      .join("; ");
  });
}

/** The install's stage line: reused, or why it installed afresh, with which package manager. */
export function installNote(
  outcome: InstallOutcome,
  manager: PackageManager | undefined,
): string | undefined {
  const notes = outcome.notes.length > 0 ? `; ${outcome.notes.join("; ")}` : "";
  if (outcome.result === "skipped") return undefined;
  if (outcome.result === "reused")
    return `node_modules reused (same lockfile, package.json, package manager, Node ABI, platform)${notes}`;
  const what = manager ? `${manager.name} ${manager.args[0]}` : "installed";
  return `fresh install with ${what}${outcome.why ? `: ${outcome.why}` : ""}${notes}`;
}

/**
 * Staging touches nothing that serves traffic, so a dropped SSH connection (a flaky link, an sshd
 * restart) is worth one more try on a fresh connection, from a clean slate.
 */
export async function stageWithRetry(fleet: Fleet, host: Host, input: StageInput): Promise<void> {
  try {
    await stage(host, input);
  } catch (error) {
    if (!(error instanceof SshError) || (error.kind !== "closed" && error.kind !== "network")) throw error;
    input.emit({
      type: "warn",
      server: host.server.name,
      message: `${error.message}; reconnecting to retry staging once`,
    });
    await sleep(1000);
    const fresh = await fleet.reconnect(host.server.name);
    if (await runOp(fresh.session, stopStrays(fresh.layout, input.release)))
      input.emit({
        type: "warn",
        server: host.server.name,
        message: "stopped what the cut-off attempt was still running in the release (npm)",
      });
    await runOp(fresh.session, removeReleases(fresh.layout, [input.release]));
    await stage(fresh, input);
  }
}
