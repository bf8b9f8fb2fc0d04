import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";
import type { Config, ServerConfig } from "../config/load.js";
import { SshError } from "./errors.js";
import { HostKeyCheck, hostKeyAlgorithms, readKnownHosts } from "./host-keys.js";
import { type KnownHostEntry, knownHostKeyTypes } from "./known-hosts.js";
import { SshSession } from "./session.js";
import { readSshConfig, resolveSshConfigHost } from "./ssh-config.js";

const DEFAULT_KEYS = ["id_ed25519", "id_ecdsa", "id_rsa"];

export interface Credentials {
  privateKey?: Buffer | string;
  passphrase?: string;
  agent?: string;
  /** Where the key came from, for error messages: never the key itself. */
  keySource?: string;
}

/**
 * Key material the way ssh finds it: the configured key file (ssh.privateKey or --ssh-key), else
 * a key in an env var (CI secrets), else the IdentityFile of the host in ~/.ssh/config; plus the
 * agent at SSH_AUTH_SOCK; the default keys (~/.ssh/id_ed25519, id_ecdsa, id_rsa) only when there
 * is neither a key nor an agent.
 */
export function loadCredentials(
  ssh: Config["ssh"],
  env: NodeJS.ProcessEnv = process.env,
  identityFiles: readonly string[] = [],
): Credentials {
  const passphrase = env[ssh.passphraseEnv] || undefined;
  const agent = ssh.agent && env.SSH_AUTH_SOCK ? env.SSH_AUTH_SOCK : undefined;
  if (ssh.privateKey)
    return { privateKey: readKey(ssh.privateKey), passphrase, agent, keySource: ssh.privateKey };
  const fromEnv = env[ssh.privateKeyEnv];
  if (fromEnv?.trim()) {
    // CI secrets often lose their trailing newline or carry literal "\n".
    const key = fromEnv.includes("\\n") && !fromEnv.includes("\n") ? fromEnv.replace(/\\n/g, "\n") : fromEnv;
    return {
      privateKey: key.endsWith("\n") ? key : `${key}\n`,
      passphrase,
      agent,
      keySource: `the key in $${ssh.privateKeyEnv}`,
    };
  }
  const identity = identityFiles.find((file) => existsSync(file));
  if (identity) return { privateKey: readKey(identity), passphrase, agent, keySource: identity };
  if (!agent) {
    for (const name of DEFAULT_KEYS) {
      const file = path.join(os.homedir(), ".ssh", name);
      if (existsSync(file)) return { privateKey: readKey(file), passphrase, agent, keySource: file };
    }
  }
  return { passphrase, agent };
}

export class KeyFileError extends Error {
  constructor(
    readonly file: string,
    code: string,
  ) {
    super(`cannot read the private key ${file} (${code})`);
    this.name = "KeyFileError";
  }
}

function readKey(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new KeyFileError(file, (error as NodeJS.ErrnoException).code ?? "error");
  }
}

/** Where to connect for a server: the nexus config, completed by ~/.ssh/config (the nexus config wins). */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
}

export function resolveTarget(server: ServerConfig, sshConfigText: string): SshTarget {
  if (sshConfigText.trim() === "") {
    return { host: server.host, port: server.port, user: server.user, identityFiles: [] };
  }
  const fromFile = resolveSshConfigHost(sshConfigText, server.host, {
    home: os.homedir(),
    localUser: os.userInfo().username,
  });
  const explicit = server.explicit ?? { port: true, user: true };
  return {
    host: fromFile.hostName ?? server.host,
    port: explicit.port ? server.port : (fromFile.port ?? server.port),
    user: explicit.user ? server.user : (fromFile.user ?? server.user),
    identityFiles: fromFile.identityFiles,
  };
}

export interface Connector {
  connect(server: ServerConfig): Promise<SshSession>;
}

export interface ConnectorOptions {
  acceptNew?: boolean;
  onCommand?: (server: string, command: string) => void;
  onLearnedKey?: (server: string, fingerprint: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Checks that the key parses (and decrypts) before connecting, so a bad key is one clear auth error. */
function checkKey(server: string, credentials: Credentials): void {
  if (credentials.privateKey === undefined) return;
  const parsed = ssh2.utils.parseKey(credentials.privateKey, credentials.passphrase);
  if (parsed instanceof Error) {
    // ssh2's messages name the problem ("Encrypted private OpenSSH key detected, but no passphrase
    // given"), never the key's content.
    throw new SshError(
      server,
      "auth",
      `cannot use ${credentials.keySource ?? "the private key"}: ${parsed.message}`,
    );
  }
}

export function createConnector(config: Config, options: ConnectorOptions = {}): Connector {
  const env = options.env ?? process.env;
  let knownHosts: KnownHostEntry[] | undefined;
  let sshConfigText: string | undefined;
  const policy = options.acceptNew ? "accept-new" : config.ssh.hostKeys;
  return {
    async connect(server) {
      knownHosts ??= readKnownHosts(config.ssh.knownHosts);
      sshConfigText ??= readSshConfig(config.ssh.configFile);
      const target = resolveTarget(server, sshConfigText);
      let credentials: Credentials;
      try {
        credentials = loadCredentials(config.ssh, env, target.identityFiles);
      } catch (error) {
        if (error instanceof KeyFileError) throw new SshError(server.name, "auth", error.message);
        throw error;
      }
      checkKey(server.name, credentials);
      const hostKey = new HostKeyCheck(
        knownHosts,
        target.host,
        target.port,
        policy,
        config.ssh.knownHosts,
        server.name,
      );
      // Like OpenSSH: a host already known by some key types negotiates only those, so it cannot
      // be talked into presenting an unknown key of another type (which accept-new would learn).
      const knownTypes = knownHostKeyTypes(knownHosts, target.host, target.port);
      const algorithms = hostKeyAlgorithms(knownTypes);
      if (algorithms?.length === 0) {
        throw new SshError(
          server.name,
          "host-key",
          `known_hosts (${config.ssh.knownHosts}) knows ${target.host} only by key types nexus cannot verify (${knownTypes.join(", ")}); add an ed25519, ecdsa or rsa key with \`nexus trust ${server.name}\``,
        );
      }
      const session = await SshSession.connect({
        server: server.name,
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: credentials.privateKey,
        passphrase: credentials.passphrase,
        agent: credentials.agent,
        keySource: credentials.keySource,
        hostKeyAlgorithms: algorithms,
        readyTimeout: config.ssh.readyTimeout,
        keepaliveInterval: config.ssh.keepaliveInterval,
        hostKey,
        onCommand: options.onCommand,
      });
      const learned = hostKey.persistLearned();
      if (learned) {
        knownHosts = undefined;
        options.onLearnedKey?.(server.name, learned);
      }
      return session;
    },
  };
}
