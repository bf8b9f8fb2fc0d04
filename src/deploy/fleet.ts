import os from "node:os";
import type { Balancer } from "../balancer/balancer.js";
import { NginxBalancer } from "../balancer/nginx.js";
import type { Config, ServerConfig } from "../config/load.js";
import { type Layout, layout, resolveRemotePath } from "../remote/layout.js";
import { createConnector } from "../ssh/connect.js";
import { LocalRunner } from "../ssh/local-runner.js";
import type { CommandRunner, SshSession } from "../ssh/session.js";
import type { Emit } from "./events.js";

export interface Host {
  server: ServerConfig;
  session: SshSession;
  home: string;
  layout: Layout;
}

export interface FleetOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
}

export class FleetError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "FleetError";
  }
}

/** The SSH sessions of one command: one per host, opened in parallel, closed together. */
export class Fleet {
  private constructor(
    readonly hosts: Map<string, Host>,
    readonly balancer: Balancer,
    private readonly sessions: SshSession[],
  ) {}

  host(name: string): Host {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no session for ${name}`);
    return host;
  }

  static async open(config: Config, names: readonly string[], options: FleetOptions): Promise<Fleet> {
    const { emit } = options;
    const connector = createConnector(config, {
      acceptNew: options.acceptNew,
      onCommand: options.verbose
        ? (server, command) => emit({ type: "info", server, message: `$ ${command}` })
        : undefined,
      onLearnedKey: (server, fingerprint) =>
        emit({
          type: "warn",
          server,
          message: `learned host key ${fingerprint} (accept-new), added to known_hosts`,
        }),
    });
    const wanted = new Set(names);
    if (config.balancer.host !== "local") wanted.add(config.balancer.host);
    const servers = config.servers.filter((s) => wanted.has(s.name));

    const results = await Promise.allSettled(
      servers.map(async (server): Promise<Host> => {
        emit({ type: "step", server: server.name, step: "connect", status: "start" });
        const started = Date.now();
        const session = await connector.connect(server);
        try {
          const home = (await session.run('printf %s "$HOME"', { what: "reading $HOME" })).trim();
          const base = resolveRemotePath(server.deployPath, home);
          emit({
            type: "step",
            server: server.name,
            step: "connect",
            status: "done",
            ms: Date.now() - started,
          });
          return { server, session, home, layout: layout(base) };
        } catch (error) {
          session.close();
          throw error;
        }
      }),
    );
    const hosts = new Map<string, Host>();
    const problems: string[] = [];
    results.forEach((result, index) => {
      const server = servers[index] as ServerConfig;
      if (result.status === "fulfilled") hosts.set(server.name, result.value);
      else {
        const message = (result.reason as Error).message;
        problems.push(message);
        emit({ type: "step", server: server.name, step: "connect", status: "fail", message });
      }
    });
    const sessions = [...hosts.values()].map((h) => h.session);
    if (problems.length > 0) {
      for (const session of sessions) session.close();
      throw new FleetError(problems);
    }

    let runner: CommandRunner;
    let lbHome: string;
    if (config.balancer.host === "local") {
      runner = new LocalRunner(
        options.verbose
          ? (server, command) => emit({ type: "info", server, message: `$ ${command}` })
          : undefined,
      );
      lbHome = os.homedir();
    } else {
      const lbHost = hosts.get(config.balancer.host) as Host;
      runner = lbHost.session;
      lbHome = lbHost.home;
    }
    const balancer = new NginxBalancer(runner, {
      upstreamFile: resolveRemotePath(config.balancer.upstreamFile, lbHome),
      upstream: config.balancer.upstream,
      testCommand: config.balancer.testCommand,
      reloadCommand: config.balancer.reloadCommand,
      pidFile: resolveRemotePath(config.balancer.pidFile, lbHome),
      onWarning: (message) => emit({ type: "warn", server: config.balancer.host, message }),
    });
    return new Fleet(hosts, balancer, sessions);
  }

  close(): void {
    for (const session of this.sessions) session.close();
  }
}
