import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Config, ServerConfig } from "../config/load.js";
import { HostKeyCheck, readKnownHosts } from "./host-keys.js";
import type { KnownHostEntry } from "./known-hosts.js";
import { SshSession } from "./session.js";

const DEFAULT_KEYS = ["id_ed25519", "id_ecdsa", "id_rsa"];

export interface Credentials {
  privateKey?: Buffer | string;
  passphrase?: string;
  agent?: string;
}

/** Key material the way ssh finds it: a key in an env var, the configured key file, the agent, default keys. */
export function loadCredentials(ssh: Config["ssh"], env: NodeJS.ProcessEnv = process.env): Credentials {
  const passphrase = env[ssh.passphraseEnv] || undefined;
  const agent = ssh.agent && env.SSH_AUTH_SOCK ? env.SSH_AUTH_SOCK : undefined;
  const fromEnv = env[ssh.privateKeyEnv];
  if (fromEnv?.trim()) {
    // CI secrets often lose their trailing newline or carry literal "\n".
    const key = fromEnv.includes("\\n") && !fromEnv.includes("\n") ? fromEnv.replace(/\\n/g, "\n") : fromEnv;
    return { privateKey: key.endsWith("\n") ? key : `${key}\n`, passphrase, agent };
  }
  if (ssh.privateKey) return { privateKey: readFileSync(ssh.privateKey), passphrase, agent };
  if (!agent) {
    for (const name of DEFAULT_KEYS) {
      const file = path.join(os.homedir(), ".ssh", name);
      if (existsSync(file)) return { privateKey: readFileSync(file), passphrase, agent };
    }
  }
  return { passphrase, agent };
}

export interface Connector {
  connect(server: ServerConfig): Promise<SshSession>;
}

export interface ConnectorOptions {
  acceptNew?: boolean;
  onCommand?: (server: string, command: string) => void;
  onLearnedKey?: (server: string, fingerprint: string) => void;
}

export function createConnector(config: Config, options: ConnectorOptions = {}): Connector {
  const credentials = loadCredentials(config.ssh);
  let knownHosts: KnownHostEntry[] | undefined;
  const policy = options.acceptNew ? "accept-new" : config.ssh.hostKeys;
  return {
    async connect(server) {
      knownHosts ??= readKnownHosts(config.ssh.knownHosts);
      const hostKey = new HostKeyCheck(knownHosts, server.host, server.port, policy, config.ssh.knownHosts);
      const session = await SshSession.connect({
        server: server.name,
        host: server.host,
        port: server.port,
        username: server.user,
        ...credentials,
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
