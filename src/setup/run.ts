import { readFileSync } from "node:fs";
import {
  holdsUpstreamBlock,
  renderServersFile,
  renderUpstreamBlock,
  SERVERS_FILE_FIX,
  UPSTREAM_BLOCK_RISK,
} from "../balancer/nginx-upstream.js";
import type { Config, NginxBalancerConfig, ServerConfig } from "../config/load.js";
import { NexusError } from "../errors.js";
import { layout, resolveRemotePath } from "../remote/layout.js";
import { runOp } from "../remote/op.js";
import { cmd, shq } from "../remote/quote.js";
import { prepare } from "../remote/release.js";
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
import { needsHandWrittenRule, sudoersFile, sudoersLine } from "./sudoers.js";

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

export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SetupError";
  }
}

/** The shell text that adds one public key to ~/.ssh/authorized_keys unless it is there. */
export function installKeyCommand(publicKey: string): string {
  const key = publicKey.trim();
  if (/[\r\n]/.test(key)) throw new SetupError("the public key must be one line");
  return [
    "umask 077",
    'mkdir -p "$HOME/.ssh"',
    'touch "$HOME/.ssh/authorized_keys"',
    // A file whose last line has no newline would get the key glued onto that line.
    `{ grep -qxF ${shq(key)} "$HOME/.ssh/authorized_keys" || { [ -z "$(tail -c 1 "$HOME/.ssh/authorized_keys")" ] || echo >> "$HOME/.ssh/authorized_keys"; printf '%s\\n' ${shq(key)} >> "$HOME/.ssh/authorized_keys"; }; }`,
    'chmod 700 "$HOME/.ssh"',
    'chmod 600 "$HOME/.ssh/authorized_keys"',
  ].join(" && ");
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
      const home = (await session.run('printf %s "$HOME"')).trim();
      const base = resolveOn(server.name, server.deployPath, home);
      if (dryRun) say(`${server.name}: would create ${base}/{releases,shared,.nexus}`);
      else {
        await runOp(session, prepare(layout(base)));
        say(`${server.name}: deploy path ${base} ready`);
      }
    }
    for (const entry of config.balancers) {
      if (entry.type === "nginx")
        await balancerStep(config, entry, options, sessions, publicKey !== undefined || !keyPath);
      else
        options.say(
          `${entry.host} (balancer): HAProxy needs its admin socket and backend as \`nexus haproxy-config\` prints them (set up as root)`,
        );
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
      `${server.name}: the host key of ${name} (${fingerprint}) is ${check.status === "revoked" ? "revoked" : "CHANGED"} in ${config.ssh.knownHosts}; setup does not replace keys (see \`nexus trust ${server.name} --replace\`)`,
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

async function keyStep(
  server: ServerConfig,
  config: Config,
  options: SetupOptions,
  connector: ReturnType<typeof createConnector>,
  publicKey: string | undefined,
  sessions: Map<string, SshSession>,
): Promise<SshSession | undefined> {
  const { say } = options;
  const env = options.env ?? process.env;
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
  const second = await tryDeployKey();
  if (second instanceof SshError) throw second;
  say(`${server.name}: logs in as ${target.user} with the deploy key`);
  return second;
}

async function balancerStep(
  config: Config,
  balancer: NginxBalancerConfig,
  options: SetupOptions,
  sessions: Map<string, SshSession>,
  reachable: boolean,
): Promise<void> {
  const { say, dryRun } = options;
  const lbName = balancer.host;
  const session = lbName === "local" ? undefined : sessions.get(lbName);
  const target = `${lbName} (balancer)`;
  if (lbName !== "local" && !session) {
    if (dryRun)
      say(
        `${target}: would write ${balancer.upstreamFile} if it is missing, and show the include and sudoers lines`,
      );
    else if (reachable) say(`${target}: not reached, skipped`);
    return;
  }
  // "local": Nginx runs where nexus runs, and its files are checked and written here.
  const runner = session ?? new LocalRunner();
  const run = (command: string) => runner.exec(command);
  const home = (await runner.run('printf %s "$HOME"')).trim();
  const file = resolveOn(target, balancer.upstreamFile, home);
  const user = (await runner.run("id -un")).trim();
  const exists = (await run(cmd("test", "-e", file))).code === 0;
  const servers = config.servers.map((s) => s.upstream);
  const content = renderServersFile({ servers });
  const block = renderUpstreamBlock({ name: balancer.upstream ?? "nexus_app", include: file });
  if (exists) {
    say(`${target}: upstream file ${file} exists (nexus edits only its server lines)`);
    const text = await run(cmd("cat", file));
    if (text.code === 0 && holdsUpstreamBlock(text.stdout))
      say(`${target}: WARNING: ${UPSTREAM_BLOCK_RISK} Instead, as root: ${SERVERS_FILE_FIX}`);
  } else if (dryRun) say(`${target}: would write ${file} with every server of the config`);
  else {
    const write = `umask 022 && cat > ${shq(file)}`;
    let result = await run(`${write} 2>&1 <<'NEXUS_EOF'\n${content}NEXUS_EOF`);
    if (result.code !== 0 && options.sudo)
      result = await run(`sudo -n tee ${shq(file)} >/dev/null <<'NEXUS_EOF'\n${content}NEXUS_EOF`);
    if (result.code === 0) say(`${target}: wrote ${file} (its server lines)`);
    else
      say(
        `${target}: cannot write ${file} as ${user}; as root, write the server lines \`nexus nginx-config\` prints for it there`,
      );
  }
  say(
    `${target}: Nginx must include it inside the upstream block, in a file only root can write (not in the http block: there it could hold any directive): ${block.replace(/\s*\n\s*/g, " ").trim()}`,
  );
  if ((await run(cmd("test", "-w", file))).code === 0) say(`${target}: ${user} can edit it in place`);
  else
    say(
      `${target}: ${user} must be able to edit it in place, as root: chgrp ${user} ${file} && chmod 664 ${file}`,
    );
  const handWritten = [balancer.testCommand, balancer.reloadCommand].filter(needsHandWrittenRule);
  if (handWritten.length > 0) {
    say(
      `${target}: ${handWritten.map((c) => `"${c}"`).join(" and ")} give sudo options nexus does not turn into a sudoers rule (a run-as user, a group, ...): write the NOPASSWD rule for ${user} by hand, as root, with visudo`,
    );
    return;
  }
  const rule = sudoersLine(user, balancer.testCommand, balancer.reloadCommand);
  if (!rule) {
    say(
      `${target}: the test and reload commands do not use sudo: nothing to add to sudoers (a user who does not own the Nginx master cannot reload it: then use "sudo -n /usr/sbin/nginx -t" and "sudo -n /usr/sbin/nginx -s reload", and run setup again)`,
    );
    return;
  }
  const sudoers = sudoersFile(config.app.name);
  if (!options.sudo || dryRun) {
    say(`${target}: sudoers rule (install as root, e.g. with visudo -f ${sudoers}): ${rule}`);
    if (dryRun && options.sudo) say(`${target}: would install it through sudo -n`);
    return;
  }
  const install = [
    "t=$(mktemp)",
    `printf '%s\\n' ${shq(rule)} > "$t"`,
    'sudo -n visudo -c -f "$t" >/dev/null',
    `sudo -n install -m 0440 -o root -g root "$t" ${shq(sudoers)}`,
  ].join(" && ");
  const result = await run(`${install}; rc=$?; rm -f "$t"; exit $rc`);
  if (result.code === 0) say(`${target}: installed ${sudoers}: ${rule}`);
  else
    say(
      `${target}: could not install the sudoers rule through sudo -n (${(result.stderr || result.stdout).trim()}); as root: ${rule}`,
    );
}

/** resolveRemotePath, its refusal naming the host. */
function resolveOn(target: string, configured: string, home: string): string {
  try {
    return resolveRemotePath(configured, home);
  } catch (error) {
    throw new NexusError(`${target}: ${(error as Error).message}`);
  }
}
