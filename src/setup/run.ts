import { readFileSync } from "node:fs";
import { driverFor } from "../balancer/drivers.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config, ServerConfig } from "../config/load.js";
import { NexusError } from "../errors.js";
import { layout, resolveRemotePathOn } from "../remote/layout.js";
import { runOp, script } from "../remote/op.js";
import { prepare } from "../remote/release.js";
import { scriptFile } from "../remote/script-file.js";
import { createConnector, resolveTarget } from "../ssh/connect.js";
import { SshError } from "../ssh/errors.js";
import { fetchHostKey } from "../ssh/fetch-host-key.js";
import { appendKnownHost, HostKeyCheck, hostKeyAlgorithms, readKnownHosts } from "../ssh/host-keys.js";
import {
  checkHostKey,
  fingerprintSha256,
  hostPatternFor,
  keyTypeOf,
  knownHostKeyTypes,
} from "../ssh/known-hosts.js";
import { LocalRunner } from "../ssh/local-runner.js";
import type { SshSession } from "../ssh/session.js";
import { readSshConfig } from "../ssh/ssh-config.js";
import { ensureDeployKey, publicKeyOf } from "./keygen.js";
import { runOnce } from "./login.js";
import { confirm, promptHidden } from "./prompt.js";

export interface SetupOptions {
  dryRun?: boolean;
  /** Trust unknown host keys after showing them, without asking. */
  yes?: boolean;
  /** Install the sudoers rule (and a missing upstream file) through `sudo -n`. */
  sudo?: boolean;
  /** Another private key to log in with once, to install nexus's key. */
  loginKey?: string;
  env?: NodeJS.ProcessEnv;
  say: (line: string) => void;
}

/** What stops setup (a host key not trusted, no way to log in once): exit 1, its message said. */
export class SetupError extends NexusError {}

/** $1 a public key line: added to ~/.ssh/authorized_keys unless it is there, with private modes. */
export const INSTALL_KEY_SCRIPT = scriptFile(import.meta.url, "install-key.sh");

/** The command that adds one public key to ~/.ssh/authorized_keys unless it is there. */
export function installKeyCommand(publicKey: string): string {
  const key = publicKey.trim();
  if (/[\r\n]/.test(key)) throw new SetupError("the public key must be one line");
  return script(INSTALL_KEY_SCRIPT, key);
}

/** Makes each server ready: deploy key, host keys, deploy path, the balancer's file and sudo rule. */
export async function runSetup(config: Config, options: SetupOptions): Promise<void> {
  const { say, dryRun } = options;
  const env = options.env ?? process.env;

  // 1. The deploy key.
  let publicKey: string | undefined;
  const keyPath = config.ssh.privateKey;
  if (keyPath) {
    let exists = true;
    try {
      readFileSync(keyPath);
    } catch {
      exists = false;
    }
    if (exists) {
      publicKey = publicKeyOf(keyPath, env.NEXUS_SSH_PASSPHRASE);
      say(`key: ${keyPath} exists`);
    } else if (dryRun) say(`key: would generate an ed25519 key pair at ${keyPath} (0600) and ${keyPath}.pub`);
    else {
      const key = ensureDeployKey(keyPath);
      publicKey = key.publicKey;
      say(`key: generated ${keyPath} (ed25519, 0600) and ${keyPath}.pub`);
    }
  } else
    say("key: ssh.privateKey is not set: nexus logs in with the agent or ~/.ssh keys; no key to install");

  // Every host key first: the connector reads known_hosts once.
  const untrusted = new Set<string>();
  for (const server of config.servers) {
    if (!(await hostKeyStep(server, config, options))) untrusted.add(server.name);
  }
  // With a deploy key, its login is what is proven: the agent (an admin's key the server may
  // already accept) stays out, or setup would say the key works and install nothing.
  const keyOnly = keyPath ? { ...config, ssh: { ...config.ssh, agent: false } } : config;
  const connector = createConnector(keyOnly, { env });
  const sessions = new Map<string, SshSession>();
  try {
    for (const server of config.servers) {
      if (untrusted.has(server.name)) {
        // --dry-run: the host key is not recorded, so no connection can be verified yet.
        say(`${server.name}: would install the deploy key (unless it is there) and create the deploy path`);
        continue;
      }
      const session = await keyStep(server, config, options, connector, publicKey, sessions);
      if (!session) continue;
      const home = await session.home();
      const base = resolveRemotePathOn(server.name, server.deployPath, home);
      if (dryRun) say(`${server.name}: would create ${base}/{releases,shared,.nexus}`);
      else {
        await runOp(session, prepare(layout(base)));
        say(`${server.name}: deploy path ${base} ready`);
      }
    }
    for (const entry of config.balancers) {
      const runner = entry.host === "local" ? new LocalRunner() : sessions.get(entry.host);
      await driverFor(entry).setup(entry, {
        config,
        say: options.say,
        dryRun,
        sudo: options.sudo,
        runner,
        reachable: publicKey !== undefined || !keyPath,
      });
    }
  } finally {
    for (const session of sessions.values()) session.close();
  }
}

/** The server's public host key file of that type (one command: `ssh-keygen -lf` takes one file). */
export function hostKeyFile(type: string): string {
  const name = type.startsWith("ecdsa-") ? "ecdsa" : type.replace(/^ssh-/, "").replace(/^dss$/, "dsa");
  return `/etc/ssh/ssh_host_${name}_key.pub`;
}

/** Shows the host key and records it; false when it stays unrecorded (--dry-run). */
async function hostKeyStep(server: ServerConfig, config: Config, options: SetupOptions): Promise<boolean> {
  const { say } = options;
  const target = resolveTarget(server, readSshConfig(config.ssh.configFile));
  const name = hostPatternFor(target.host, target.port);
  const entries = readKnownHosts(config.ssh.knownHosts);
  const known = knownHostKeyTypes(entries, target.host, target.port);
  const key = await fetchHostKey(server, target, config, hostKeyAlgorithms(known));
  const fingerprint = `${keyTypeOf(key)} ${fingerprintSha256(key)}`;
  const check = checkHostKey(entries, target.host, target.port, key);
  if (check.status === "match") {
    say(`${server.name}: host key ${fingerprint} already trusted`);
    return true;
  }
  if (check.status !== "unknown") {
    throw new SetupError(
      `${server.name}: the host key of ${name} (${fingerprint}) is ${check.status === "revoked" ? "revoked" : "CHANGED"} in ${config.ssh.knownHosts}; setup does not replace keys (see \`${nexusCommand("trust", server.name, "--replace")}\`)`,
    );
  }
  say(
    `${server.name}: host key of ${name} is ${fingerprint} (compare with \`ssh-keygen -lf ${hostKeyFile(keyTypeOf(key))}\` on the server)`,
  );
  if (options.dryRun) {
    say(`${server.name}: would add it to ${config.ssh.knownHosts}`);
    return false;
  }
  if (!options.yes) {
    if (!process.stdin.isTTY)
      throw new SetupError(
        `${server.name}: not a terminal: check the fingerprint above, then run again with --yes`,
      );
    if (!(await confirm(`Trust this key for ${name}? [y/N] `)))
      throw new SetupError(`${server.name}: host key not trusted`);
  }
  appendKnownHost(config.ssh.knownHosts, target.host, target.port, key);
  say(`${server.name}: added the host key to ${config.ssh.knownHosts}`);
  return true;
}

/**
 * One login with whatever the server accepts before the deploy key is installed (--login-key, the
 * agent, a password from NEXUS_SSH_PASSWORD or the terminal), tried in that order, to add it.
 */
async function installKeyOnce(
  server: ServerConfig,
  config: Config,
  options: SetupOptions,
  target: ReturnType<typeof resolveTarget>,
  publicKey: string,
): Promise<void> {
  const { say } = options;
  const env = options.env ?? process.env;
  const where = `${target.user}@${target.host}:${target.port}`;
  const hostKey = new HostKeyCheck(
    readKnownHosts(config.ssh.knownHosts),
    target.host,
    target.port,
    "strict",
    config.ssh.knownHosts,
    server.name,
  );
  const login = {
    host: target.host,
    port: target.port,
    username: target.user,
    hostKey,
    readyTimeout: config.ssh.readyTimeout,
  };
  let password = env.NEXUS_SSH_PASSWORD;
  const attempts: { how: string; extra: Record<string, unknown> }[] = [];
  if (options.loginKey)
    attempts.push({ how: `key ${options.loginKey}`, extra: { privateKey: readFileSync(options.loginKey) } });
  if (env.SSH_AUTH_SOCK) attempts.push({ how: "the agent", extra: { agent: env.SSH_AUTH_SOCK } });
  if (password === undefined && process.stdin.isTTY && !options.loginKey) {
    password = await promptHidden(`${where} password (used once, to install the deploy key): `);
  }
  if (password !== undefined) attempts.push({ how: "a password", extra: { password } });
  if (attempts.length === 0)
    throw new SetupError(
      `${server.name}: the deploy key is not accepted yet and there is no way to log in once: use --login-key <path>, an agent (SSH_AUTH_SOCK), a terminal for the password prompt, or NEXUS_SSH_PASSWORD`,
    );
  let installed = false;
  const problems: string[] = [];
  for (const attempt of attempts) {
    try {
      const result = await runOnce({ ...login, ...attempt.extra }, installKeyCommand(publicKey));
      if (result.code !== 0) throw new Error(result.output.trim() || `exit ${result.code}`);
      say(
        `${server.name}: installed the deploy key in ${where}:~/.ssh/authorized_keys (logged in once with ${attempt.how})`,
      );
      installed = true;
      break;
    } catch (error) {
      problems.push(`${attempt.how}: ${(error as Error).message}`);
    }
  }
  if (!installed)
    throw new SetupError(
      `${server.name}: could not log in to install the deploy key (${problems.join("; ")})`,
    );
}

async function keyStep(
  server: ServerConfig,
  config: Config,
  options: SetupOptions,
  connector: ReturnType<typeof createConnector>,
  publicKey: string | undefined,
  sessions: Map<string, SshSession>,
): Promise<SshSession | undefined> {
  const { say } = options;
  const tryDeployKey = async (): Promise<SshSession | SshError> => {
    try {
      const session = await connector.connect(server);
      sessions.set(server.name, session);
      return session;
    } catch (error) {
      if (error instanceof SshError) return error;
      throw error;
    }
  };
  if (options.dryRun && !publicKey && config.ssh.privateKey) {
    say(
      `${server.name}: would install the new key in ~/.ssh/authorized_keys (one login with a password, --login-key or the agent)`,
    );
    return undefined;
  }
  const first = await tryDeployKey();
  if (!(first instanceof SshError)) {
    say(`${server.name}: logs in as ${server.user} with the deploy key`);
    return first;
  }
  if (first.kind !== "auth" || !publicKey) throw first;

  const target = resolveTarget(server, readSshConfig(config.ssh.configFile));
  const where = `${target.user}@${target.host}:${target.port}`;
  if (options.dryRun) {
    say(
      `${server.name}: would install the deploy key in ${where}:~/.ssh/authorized_keys (one login with a password, --login-key or the agent)`,
    );
    return undefined;
  }
  await installKeyOnce(server, config, options, target, publicKey);
  const second = await tryDeployKey();
  if (second instanceof SshError) throw second;
  say(`${server.name}: logs in as ${target.user} with the deploy key`);
  return second;
}
