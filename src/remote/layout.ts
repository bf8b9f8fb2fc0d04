import path from "node:path/posix";
import { NexusError } from "../errors.js";

/** Where things live under a server's deploy path. All paths absolute. */
export interface Layout {
  base: string;
  releases: string;
  shared: string;
  /** PM2 writes the app's stdout and stderr here (shared/logs/app-out.log, app-error.log). */
  logs: string;
  current: string;
  state: string;
  lock: string;
  /** Written when a deploy or rollback starts changing the server, removed when it ends. */
  journal: string;
  history: string;
  /** One empty file per release that failed its gate. */
  failed: string;
  /** One empty file per release, written when it was staged: its mtime orders the releases. */
  staged: string;
  incoming: string;
  /** The surge strategy's record of the port that serves (see live-port.ts). */
  livePort: string;
  release(id: string): string;
  /**
   * The app's directory in a release: the release itself, or the workspace package's directory
   * (app.workspace). The process runs there; hooks and shared paths are relative to it.
   */
  app(id: string): string;
  /** The PM2 ecosystem file of a release, kept outside the release so releases stay pristine. */
  ecosystem(id: string): string;
}

export function layout(base: string, workspace?: string): Layout {
  const state = path.join(base, ".nexus");
  return {
    base,
    releases: path.join(base, "releases"),
    shared: path.join(base, "shared"),
    logs: path.join(base, "shared", "logs"),
    current: path.join(base, "current"),
    state,
    lock: path.join(state, "lock"),
    journal: path.join(state, "journal.json"),
    history: path.join(state, "history.jsonl"),
    failed: path.join(state, "failed"),
    staged: path.join(state, "staged"),
    incoming: path.join(state, "incoming"),
    livePort: path.join(state, "live-port"),
    release: (id) => path.join(base, "releases", id),
    app: (id) => path.join(base, "releases", id, workspace ?? ""),
    ecosystem: (id) => path.join(state, "pm2", `${id}.json`),
  };
}

/**
 * Resolves a configured remote path ("~/apps/x" or "/srv/x") against the remote home. A login
 * without an absolute $HOME (an account with an empty home field, `env -i`) would otherwise turn
 * "~/apps/x" into "apps/x" or "/apps/x"; that is refused.
 */
export function resolveRemotePath(configured: string, home: string): string {
  if (configured !== "~" && !configured.startsWith("~/")) return configured;
  if (!home.startsWith("/"))
    throw new NexusError(
      `${configured} is relative to the remote home, and $HOME is ${home ? `"${home}", not an absolute path` : "empty"} for this login: give the account a home directory, or configure an absolute path`,
    );
  return configured === "~" ? home : path.join(home, configured.slice(2));
}

const RELEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Release ids become directory names: keep them to a safe alphabet. */
export function isValidReleaseId(id: string): boolean {
  return RELEASE_ID.test(id) && id !== "." && id !== "..";
}

export class InvalidReleaseIdError extends NexusError {
  constructor(id: string) {
    super(`refused an unsafe release id ${JSON.stringify(id.slice(0, 80))}`);
  }
}

/** Every id that becomes part of a remote path is checked here, wherever it came from. */
export function assertReleaseId(id: string): void {
  if (!isValidReleaseId(id)) throw new InvalidReleaseIdError(id);
}

/** resolveRemotePath, its refusal naming the host (`target`) it was resolved for. */
export function resolveRemotePathOn(target: string, configured: string, home: string): string {
  try {
    return resolveRemotePath(configured, home);
  } catch (error) {
    throw new NexusError(`${target}: ${(error as Error).message}`);
  }
}
