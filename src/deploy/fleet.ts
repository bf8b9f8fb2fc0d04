import os from "node:os";
import { stripVTControlCharacters } from "node:util";
import type { Balancer } from "../balancer/balancer.js";
import { combineBalancers, createBalancer } from "../balancer/drivers.js";
import type { Config, ServerConfig } from "../config/load.js";
import { NexusError } from "../errors.js";
import type { Emit } from "../events/events.js";
import { createProcessManager } from "../process/managers.js";
import type { ProcessManager } from "../process/process-manager.js";
import { type Layout, layout, resolveRemotePath } from "../remote/layout.js";
import { secretRedactor } from "../report/redact.js";
import { createConnector } from "../ssh/connect.js";
import { LocalRunner } from "../ssh/local-runner.js";
import type { ExecResult, InteractiveRunner, SshSession } from "../ssh/session.js";

export interface Host {
  server: ServerConfig;
  /** Replaced in place by Fleet.reconnect, so hold the Host, not the session. */
  session: SshSession;
  home: string;
  layout: Layout;
  /** The config's destination (`-d staging`): named in the history lines written to the host. */
  destination?: string;
}

export interface FleetOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  /** Leave out servers that cannot be reached (never the balancer host) instead of aborting. */
  skipUnreachable?: boolean;
  /** No "connect ok" lines (read-only commands such as status); failures are still reported. */
  quiet?: boolean;
}

export class FleetError extends NexusError {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

type Closable = Pick<Balancer, "close">;

/** The SSH sessions of one command: one per host, opened in parallel, closed together. */
export class Fleet {
  private constructor(
    readonly hosts: Map<string, Host>,
    readonly balancer: Balancer,
    readonly processes: ProcessManager,
    /** Servers left out by --skip-unreachable. */
    readonly unreachable: ReadonlySet<string>,
    private readonly openHost: (server: ServerConfig) => Promise<Host>,
  ) {}

  private readonly alsoClosed: Closable[] = [];

  /** Reconnects the hosts whose connection was lost, so cleanup (unlock, removing a partial release) can run. */
  async revive(hosts: Iterable<Host>): Promise<void> {
    await Promise.allSettled(
      [...hosts].filter((h) => !h.session.alive).map((h) => this.reconnect(h.server.name)),
    );
  }

  /** A new SSH connection for a host whose connection dropped; the Host object is updated in place. */
  async reconnect(name: string): Promise<Host> {
    const host = this.host(name);
    host.session.close();
    const fresh = await this.openHost(host.server);
    host.session = fresh.session;
    return host;
  }

  host(name: string): Host {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no session for ${name}`);
    return host;
  }

  static async open(config: Config, names: readonly string[], options: FleetOptions): Promise<Fleet> {
    const { emit } = options;
    const verbose = options.verbose ? verboseOutput(config, emit) : undefined;
    const connector = createConnector(config, {
      acceptNew: options.acceptNew,
      onCommand: verbose?.showCommand,
      onLearnedKey: (server, fingerprint) =>
        emit({
          type: "warn",
          server,
          message: `learned host key ${fingerprint} (accept-new), added to known_hosts`,
        }),
      onWarning: (message) => emit({ type: "warn", message }),
    });
    const wanted = new Set(names);
    const balancerHosts = new Set(config.balancers.map((b) => b.host));
    for (const host of balancerHosts) if (host !== "local") wanted.add(host);
    const servers = config.servers.filter((s) => wanted.has(s.name));

    const openHost = async (server: ServerConfig): Promise<Host> => {
      if (!options.quiet) emit({ type: "step", server: server.name, step: "connect", status: "start" });
      const started = Date.now();
      const session = await connector.connect(server);
      if (verbose) session.onOutput = verbose.showOutput;
      try {
        const home = await session.home();
        const base = resolveRemotePath(server.deployPath, home);
        if (!options.quiet) {
          emit({
            type: "step",
            server: server.name,
            step: "connect",
            status: "done",
            ms: Date.now() - started,
          });
        }
        return {
          server,
          session,
          home,
          layout: layout(base, config.app.workspace),
          ...(config.destination ? { destination: config.destination } : {}),
        };
      } catch (error) {
        session.close();
        throw error;
      }
    };
    const results = await Promise.allSettled(servers.map(openHost));
    const { hosts, unreachable } = connected(servers, results, options, balancerHosts);
    const balancer = combineBalancers(
      await Promise.all(
        config.balancers.map((entry) => {
          const { runner, home } = hostRunner(hosts, entry.host, verbose?.showCommand);
          return createBalancer(entry, runner, {
            home,
            onWarning: (message) => emit({ type: "warn", server: entry.host, message }),
            onCommand: verbose?.showCommand,
          });
        }),
      ),
    );
    return new Fleet(hosts, balancer, await createProcessManager(config), unreachable, openHost);
  }

  /** Closed with the fleet: a balancer driver of its own (the error-rate watch's). */
  closeWith(closable: Closable): void {
    this.alsoClosed.push(closable);
  }

  /** The balancers finish (HAProxy's state file), then every session closes. */
  async close(): Promise<void> {
    await Promise.allSettled([this.balancer, ...this.alsoClosed].map((closable) => closable.close?.()));
    for (const host of this.hosts.values()) host.session.close();
  }
}

/**
 * The hosts connected, and the servers --skip-unreachable leaves out (never a balancer host); a
 * server that could not be reached otherwise stops the command (FleetError), its step failed.
 */
function connected(
  servers: readonly ServerConfig[],
  results: PromiseSettledResult<Host>[],
  options: FleetOptions,
  balancerHosts: ReadonlySet<string>,
): { hosts: Map<string, Host>; unreachable: Set<string> } {
  const { emit } = options;
  const hosts = new Map<string, Host>();
  const problems: string[] = [];
  const unreachable = new Set<string>();
  results.forEach((result, index) => {
    const server = servers[index] as ServerConfig;
    if (result.status === "fulfilled") hosts.set(server.name, result.value);
    else {
      const message = (result.reason as Error).message;
      emit({
        type: "step",
        server: server.name,
        step: "connect",
        status: "fail",
        message: message.startsWith(`${server.name}: `) ? message.slice(server.name.length + 2) : message,
      });
      if (options.skipUnreachable && !balancerHosts.has(server.name)) {
        unreachable.add(server.name);
        emit({ type: "warn", server: server.name, message: "unreachable: left out of this command" });
      } else problems.push(message);
    }
  });
  if (problems.length > 0) {
    for (const host of hosts.values()) host.session.close();
    throw new FleetError(problems);
  }
  return { hosts, unreachable };
}

/** --verbose: each remote command and the end of its output, as info events, secrets redacted. */
function verboseOutput(config: Config, emit: Emit) {
  const redact = secretRedactor(config);
  return {
    showCommand: (server: string, command: string) =>
      redact(printable(command))
        .trimEnd()
        .split("\n")
        .forEach((line, i) => {
          emit({ type: "info", server, message: `${i === 0 ? "$" : ">"} ${clip(line)}` });
        }),
    showOutput: (server: string, _command: string, result: ExecResult) => {
      for (const line of outputLines(result, redact)) emit({ type: "info", server, message: line });
    },
  };
}

/**
 * Opens the fleet (`names`, and the balancer hosts), runs `body` with it, and closes it on every
 * exit path: the one way a command holds SSH sessions.
 */
export async function withFleet<T>(
  config: Config,
  names: readonly string[],
  options: FleetOptions,
  body: (fleet: Fleet) => Promise<T>,
): Promise<T> {
  const fleet = await Fleet.open(config, names, options);
  try {
    return await body(fleet);
  } finally {
    await fleet.close();
  }
}

/** Every server of the config, by name: what most commands connect to. */
export function allServers(config: Config): string[] {
  return config.servers.map((s) => s.name);
}

/**
 * Runs commands on a host of the fleet (through the Host, so that a reconnected session is used
 * from then on), or on this machine for "local": a balancer host, for instance.
 */
export function hostRunner(
  hosts: ReadonlyMap<string, Host>,
  name: string,
  onCommand?: (server: string, command: string) => void,
): { runner: InteractiveRunner; home: string } {
  if (name === "local") return { runner: new LocalRunner(onCommand), home: os.homedir() };
  const host = hosts.get(name);
  if (!host) throw new Error(`no session for ${name}`);
  return {
    runner: {
      name: host.server.name,
      exec: (command, options) => host.session.exec(command, options),
      run: (command, options) => host.session.run(command, options),
      start: (command, onStdout) => host.session.start(command, onStdout),
    },
    home: host.home,
  };
}

/** Remote output without control sequences (colours, cursor moves) or other control characters. */
function printable(text: string): string {
  return [...stripVTControlCharacters(text)].filter((c) => c >= " " || c === "\n" || c === "\t").join("");
}

const OUTPUT_LINES = 20;
// Long enough for the last line of a script run with its positional parameters (paths, a sha256, commands).
const LINE_CHARS = 600;

/** A long line (pm2 jlist, a JSON state dump) cut to a readable length; after redaction, never before. */
function clip(line: string): string {
  return line.length > LINE_CHARS
    ? `${line.slice(0, LINE_CHARS)}… (${line.length - LINE_CHARS} more chars)`
    : line;
}

/**
 * --verbose: the last lines of a remote command's stdout ("| ") and stderr ("! "), without
 * control sequences, secrets redacted; the exit status when it is not 0.
 */
export function outputLines(result: ExecResult, redact: (text: string) => string): string[] {
  const lines: string[] = [];
  for (const [stream, mark] of [
    [result.stdout, "|"],
    [result.stderr, "!"],
  ] as const) {
    const all = printable(stream).trimEnd();
    if (all === "") continue;
    const split = all.split("\n");
    if (split.length > OUTPUT_LINES) lines.push(`  ${mark} … ${split.length - OUTPUT_LINES} earlier line(s)`);
    for (const line of split.slice(-OUTPUT_LINES)) lines.push(`  ${mark} ${clip(redact(line.trimEnd()))}`);
  }
  if (result.code !== 0) lines.push(`  (exit ${result.code ?? "signal"})`);
  return lines;
}
