import {
  appPackageManager as detectAppPackageManager,
  type PackageManager,
} from "../artifact/package-manager.js";
import type { BalancerHost } from "../balancer/driver.js";
import { type BalancerConfig, driverFor } from "../balancer/drivers.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config, ServerConfig } from "../config/load.js";
import { NexusError } from "../errors.js";
import { ProbeAgent } from "../health/probe-agent.js";
import { processManagerOf } from "../process/managers.js";
import { layout, resolveRemotePath } from "../remote/layout.js";
import { runOp } from "../remote/op.js";
import { checkShared } from "../remote/shared.js";
import { createConnector } from "../ssh/connect.js";
import { SshError } from "../ssh/errors.js";
import { LocalRunner } from "../ssh/local-runner.js";
import type { SshSession } from "../ssh/session.js";
import { mapSettled } from "../util/map-limit.js";
import { appSizeEstimate } from "./app-size.js";
import { parseFacts } from "./facts.js";
import { fetchHealth, healthItem } from "./health.js";
import { loginShellItem } from "./login-shell.js";
import { serverItems } from "./server-checks.js";
import { serverScript } from "./server-script.js";
import { startItem } from "./start.js";
import { parseSurgePorts, surgePortsItem, surgePortsScript } from "./surge.js";
import { type CheckItem, type CheckReport, report } from "./types.js";

export interface CheckOptions {
  /** Env for credentials (NEXUS_SSH_KEY ...); default process.env. */
  env?: NodeJS.ProcessEnv;
}

function sshFix(error: unknown, server: string): string {
  if (!(error instanceof SshError)) return "see the message";
  switch (error.kind) {
    case "host-key":
      return `check the fingerprint with the server's admin, then \`${nexusCommand("trust", server)}\``;
    case "auth":
      return `install the deploy key in the login user's ~/.ssh/authorized_keys: \`${nexusCommand("setup")}\` does it (it logs in once with a password or another key)`;
    case "refused":
    case "timeout":
    case "network":
      return "check the server's address and SSH port in the config, that sshd runs, and the firewall";
    default:
      return "retry; see the message";
  }
}

interface Connected {
  server: ServerConfig;
  session: SshSession;
  home: string;
}

/** Everything `nexus check` looks at, read-only: it connects, reads and asks, and changes nothing. */
export async function runCheck(config: Config, options: CheckOptions = {}): Promise<CheckReport> {
  const items: CheckItem[] = [];
  const sshWarnings: string[] = [];
  const connector = createConnector(config, {
    env: options.env,
    onWarning: (message) => sshWarnings.push(message),
  });
  const estimate = await appSizeEstimate(config);
  items.push(...secretItems(config));
  items.push(startItem(config));
  const sessions: Connected[] = [];
  try {
    const results = await mapSettled(config.servers, 8, async (server): Promise<CheckItem[]> => {
      let connected: Connected;
      try {
        const session = await connector.connect(server);
        const home = await session.home();
        connected = { server, session, home };
        sessions.push(connected);
      } catch (error) {
        return [{ target: server.name, check: "ssh", status: "fail", ...sshProblem(error, server.name) }];
      }
      return checkServer(connected, config, estimate);
    });
    for (const result of results) {
      if (result.status === "fulfilled") items.push(...result.value);
      else items.push({ target: "?", check: "check", status: "fail", detail: String(result.reason) });
    }
    for (const entry of config.balancers) items.push(...(await checkBalancer(entry, sessions, config)));
    for (const message of sshWarnings)
      items.push({ target: "ssh config", check: "keywords", status: "warn", detail: message });
  } finally {
    for (const s of sessions) s.session.close();
  }
  return report(items);
}

/** What a failed connection says, and what to do about it. */
function sshProblem(error: unknown, server: string): { detail: string; fix: string } {
  return { detail: (error as Error).message.replace(`${server}: `, ""), fix: sshFix(error, server) };
}

/** The app's package manager, or undefined when it cannot be told (deploy says why, exit 2). */
function appPackageManager(config: Config): PackageManager | undefined {
  try {
    return detectAppPackageManager(config);
  } catch {
    return undefined;
  }
}

/**
 * One server, connected: what the login user finds there (Node, the deploy path, the disk), what
 * the process manager finds (its own script, run alongside), the shared files and the health
 * endpoint.
 */
async function checkServer(connected: Connected, config: Config, estimate: number): Promise<CheckItem[]> {
  const { server, session, home } = connected;
  let deployPath: string;
  try {
    deployPath = resolveRemotePath(server.deployPath, home);
  } catch (error) {
    return [{ target: server.name, check: "deploy path", status: "fail", detail: (error as Error).message }];
  }
  const manager = await processManagerOf(config).check(config, server);
  const outputs = await Promise.all([
    session.run(serverScript(deployPath), { what: "checking the server" }),
    session.run(manager.script, { what: "checking the process manager" }),
  ]);
  const facts = parseFacts(outputs.join("\n"));
  const out: CheckItem[] = [
    {
      target: server.name,
      check: "ssh",
      status: "ok",
      detail: `${facts.values.get("user") ?? server.user}@${server.host}:${server.port}, host key known`,
    },
    await loginShellItem(session, server.name),
    ...serverItems(facts, {
      server: server.name,
      deployPath,
      artifactEstimate: estimate,
      packageManager: appPackageManager(config),
    }),
    ...manager.items(facts),
  ];
  if (config.shared.files.length > 0) out.push(await sharedItem(session, server.name, deployPath, config));
  let port = config.health.port;
  if (config.rolling.strategy === "surge") {
    const found = parseSurgePorts(await session.run(surgePortsScript(deployPath), { what: "reading ports" }));
    out.push(
      surgePortsItem(
        server.name,
        found,
        config.app,
        facts.values.has("deploy_writable") && found.live !== undefined,
      ),
    );
    port = found.live ?? config.app.port;
  }
  out.push(
    healthItem(
      server.name,
      config.health.path,
      config.health.checkRelease,
      await health(session, server, config, port),
    ),
  );
  return out;
}

/**
 * fromEnv values whose variable is not set where `check` runs: a warning (check may run on
 * another machine than the deploys), since deploy, restart and exec refuse to run without them
 * (a webhook's URL: that webhook is not told).
 */
function secretItems(config: Config): CheckItem[] {
  const missing = new Map<string, string>();
  for (const server of config.servers)
    for (const m of server.missingSecrets ?? [])
      missing.set(m.field, `${m.field} reads $${m.variable}, which is ${m.empty ? "empty" : "not set"} here`);
  for (const target of config.notify)
    if (target.missing)
      missing.set(
        target.missing.field,
        `${target.missing.field} reads $${target.missing.variable}, which is ${target.missing.empty ? "empty" : "not set"} here (that webhook is not told)`,
      );
  if (missing.size === 0) return [];
  return [
    {
      target: "this machine",
      check: "secrets",
      status: "warn",
      detail: [...missing.values()].join("; "),
      fix: "set them where nexus deploys (CI secrets): deploy, restart and exec refuse to run without them",
    },
  ];
}

/** shared.files: each must already be in <deployPath>/shared/ (a deploy stops in preflight otherwise). */
async function sharedItem(
  session: SshSession,
  server: string,
  deployPath: string,
  config: Config,
): Promise<CheckItem> {
  const l = layout(deployPath);
  const missing = await runOp(session, checkShared(l, config.shared));
  if (missing.length === 0)
    return { target: server, check: "shared files", status: "ok", detail: config.shared.files.join(", ") };
  return {
    target: server,
    check: "shared files",
    status: "fail",
    detail: `missing: ${missing.map((f) => `${l.shared}/${f}`).join(", ")}`,
    fix: "put them there (scp, your provisioning): nexus never creates shared.files, and a deploy stops in preflight without them",
  };
}

async function health(session: SshSession, server: ServerConfig, config: Config, port: number) {
  const host = server.upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  const agent = new ProbeAgent(
    config.health.via === "direct"
      ? { host, port }
      : { host, port, open: () => session.forwardSocket(host, port, "nexus check") },
  );
  try {
    return await fetchHealth(agent, config.health.path, config.health.timeout);
  } finally {
    agent.destroy();
  }
}

/** The balancer's part of the report: its driver's checks, on the balancer host. */
async function checkBalancer(
  entry: BalancerConfig,
  sessions: readonly Connected[],
  config: Config,
): Promise<CheckItem[]> {
  const target = `${entry.host} (balancer)`;
  let host: BalancerHost | undefined;
  if (entry.host === "local") host = { runner: new LocalRunner(), home: process.env.HOME ?? "" };
  else {
    const connected = sessions.find((s) => s.server.name === entry.host);
    if (connected) host = { runner: connected.session, home: connected.home };
  }
  if (!host) return [{ target, check: "ssh", status: "fail", detail: "not reachable (see above)" }];
  try {
    return await driverFor(entry).check(entry, { config, host, target });
  } catch (error) {
    if (!(error instanceof NexusError)) throw error;
    return [{ target, check: "balancer", status: "fail", detail: error.message }];
  }
}
