import type { Layout } from "../remote/layout.js";
import type { RemoteOp } from "../remote/op.js";
import type { CommandRunner, InteractiveRunner } from "../ssh/session.js";

/** One running instance of the app, as the process manager sees it. */
export interface ProcessInfo {
  name: string;
  pid: number;
  status: string;
  restarts: number;
  /** ms since epoch when the process last started */
  startedAt?: number;
  memory?: number;
  cpu?: number;
  /** The release it runs (its NEXUS_RELEASE), when the listing says. */
  release?: string;
}

export interface RestartResult {
  /** The app's instances before the restart (none on a first start). */
  before: ProcessInfo[];
  /** The instances it started. */
  after: ProcessInfo[];
  /** The server's clock when `after` was read (ms since epoch), to tell their uptime then. */
  serverNow?: number;
}

/**
 * How long the youngest of the started instances had been up when the restart returned, by the
 * server's own clock (so no clock skew); 0 when unknown.
 */
export function uptimeAtStart(result: RestartResult): number {
  const starts = result.after.map((p) => p.startedAt).filter((t): t is number => typeof t === "number");
  if (result.serverNow === undefined || starts.length !== result.after.length || starts.length === 0)
    return 0;
  return Math.max(0, result.serverNow - Math.max(...starts));
}

/** A restart made ready while the server drains (`ProcessManager.prepareRestart`). */
export interface PreparedRestart {
  readonly release: string;
  /** False once it has ended (closed, or the program exited): `go()` would fail. */
  readonly alive: boolean;
  /** Stops the app's old instances and starts the release. */
  go(): Promise<RestartResult>;
  /** The app's instances now, as `ProcessManager.inspect` (cheaper: the connection is open). */
  inspect(): Promise<ProcessInfo[]>;
  /** As `ProcessManager.persist`, through the same connection. */
  persist(): Promise<void>;
  /**
   * As `ProcessManager.stop(port)`, through the same connection: the surge strategy's process on
   * the other port, once the balancer has left it.
   */
  stop(port?: number): Promise<void>;
  /** Ends it; closed before `go()`, it has done nothing. */
  close(): void;
}

/** What a release needs to run: where it lives and the environment it gets. */
export interface ReleaseProcess {
  release: string;
  /** The app's directory in the release (`Layout.app`): the process's cwd. */
  cwd: string;
  env: Record<string, string>;
  /**
   * The surge strategy's process on this port (app.port or app.surgePort): a process of its own
   * (its own name and process file), started beside the one serving. Left out: the app's one process.
   */
  port?: number;
}

/** A release's process file (it may hold secrets: 0600). */
export interface ProcessFile {
  path: string;
  content: string;
  /**
   * Writes it on the server, once the release is installed: what only the installed release
   * tells (the JS file of a dependency's binary) is found there, and the op's result names it
   * (undefined when nothing had to be found).
   */
  write: RemoteOp<string | undefined>;
}

/**
 * What nexus needs from the process manager on a server. PM2 is the one implementation today;
 * another (systemd, say) is one folder beside pm2/ and one line in `createProcessManager`.
 */
export interface ProcessManager {
  readonly name: string;
  /** How many instances a release runs, when known before it starts (the gate checks the count). */
  readonly instances?: number;
  /** The release's process file: its path on the server, its content, and how it is written. */
  processFile(layout: Layout, release: ReleaseProcess): ProcessFile;
  /**
   * Stops the app's old instances and starts the release from its process file. With `port` (the
   * surge strategy), only the process of that port is replaced: the other keeps running.
   */
  restart(runner: CommandRunner, layout: Layout, release: string, port?: number): Promise<RestartResult>;
  /**
   * Optional: gets a restart ready while the server drains (whatever start-up it costs is then
   * not spent out of rotation); the restart itself waits for `go()`.
   */
  prepareRestart?(runner: InteractiveRunner, layout: Layout, release: string, port?: number): PreparedRestart;
  /** The app's instances now (with `port`: the surge process of that port). */
  inspect(runner: CommandRunner, port?: number): Promise<ProcessInfo[]>;
  /** Stops the app (with `port`: the surge process of that port only). */
  stop(runner: CommandRunner, port?: number): Promise<void>;
  /** Makes what runs now come back after a reboot. */
  persist(runner: CommandRunner): Promise<void>;
  /** Where the app's output goes on the server. */
  logFiles(layout: Layout): { out: string; error: string };
}

/**
 * Why freshly started instances are not trustworthy yet (every reason that applies, so a crash
 * loop is named even when the probes failed first), or undefined when they are: every instance
 * must be online, none may be an old one, and none may have restarted or been replaced since it
 * started (a crash-looping app can answer /health between crashes).
 */
export function processProblem(
  now: readonly ProcessInfo[],
  started: readonly ProcessInfo[],
  oldPids: readonly number[],
  expected?: number,
): string | undefined {
  if (now.length === 0) return "the process manager does not list the app";
  const problems: string[] = [];
  if (expected !== undefined && now.length !== expected)
    problems.push(`${now.length} instance(s) running, ${expected} expected`);
  const notOnline = now.find((p) => p.status !== "online");
  if (notOnline) problems.push(`the app is ${notOnline.status} (pid ${notOnline.pid})`);
  const old = now.find((p) => p.pid > 0 && oldPids.includes(p.pid));
  if (old) problems.push(`the old process (pid ${old.pid}) is still the one running`);
  problems.push(...crashes(now, started, oldPids));
  return problems.length > 0 ? problems.join("; ") : undefined;
}

/**
 * What says the instances started crashed (restarts, a replaced or vanished process), and nothing
 * else: asked while the app has not answered yet, when "not online" may just be a slow start.
 */
export function crashProblem(
  now: readonly ProcessInfo[],
  started: readonly ProcessInfo[],
  oldPids: readonly number[],
): string | undefined {
  const problems = crashes(now, started, oldPids);
  return problems.length > 0 ? problems.join("; ") : undefined;
}

function crashes(
  now: readonly ProcessInfo[],
  started: readonly ProcessInfo[],
  oldPids: readonly number[],
): string[] {
  if (started.length === 0) return [];
  const problems: string[] = [];
  const restarts = now.reduce((n, p) => n + p.restarts, 0) - started.reduce((n, p) => n + p.restarts, 0);
  const startedPids = new Set(started.map((p) => p.pid));
  const replaced = now.find(
    (p) => p.status === "online" && !startedPids.has(p.pid) && !oldPids.includes(p.pid),
  );
  if (restarts > 0) problems.push(`the app restarted ${restarts} time(s) during the gate (crash loop)`);
  else if (replaced) problems.push(`a process was replaced (now pid ${replaced.pid}): it crashed`);
  if (now.length < started.length)
    problems.push(`${started.length - now.length} of ${started.length} instance(s) are gone`);
  return problems;
}
