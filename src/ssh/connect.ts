import { existsSync, readFileSync, realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import ssh2 from "ssh2";
import { nexusCommand } from "../config/invocation.js";
import { type Config, expandHome, type ServerConfig } from "../config/load.js";
import { SshError } from "./errors.js";
import { HostKeyCheck, hostKeyAlgorithms, readKnownHosts } from "./host-keys.js";
import { type Hop, JumpPool, parseProxyJump, resolveHops } from "./jump.js";
import { type KnownHostEntry, knownHostKeyTypes } from "./known-hosts.js";
import { SshSession } from "./session.js";
import {
  HONOURED_KEYWORDS,
  type NexusSshBehaviour,
  readSshConfig,
  resolveSshConfigHost,
  type SshConfigContext,
  sameAsNexus,
  type UnhonouredSetting,
} from "./ssh-config.js";

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
  /** Jump hosts, first to last; empty: direct. */
  hops: Hop[];
  /** ssh config keywords that apply to this host and that nexus does not honour. */
  unhonoured: UnhonouredSetting[];
}

/** ~ and %u for the ssh config: this machine's. */
export function localContext(): SshConfigContext {
  return { home: os.homedir(), localUser: os.userInfo().username };
}

export function resolveTarget(
  server: ServerConfig,
  sshConfigText: string,
  context: SshConfigContext = localContext(),
): SshTarget {
  const fromFile =
    sshConfigText.trim() === "" ? undefined : resolveSshConfigHost(sshConfigText, server.host, context);
  const explicit = server.explicit ?? { port: true, user: true };
  const jump = server.proxyJump ?? fromFile?.proxyJump;
  const field =
    server.proxyJump !== undefined
      ? `${server.name}: proxyJump`
      : `ProxyJump of ${server.host} in the ssh config`;
  return {
    host: fromFile?.hostName ?? server.host,
    port: explicit.port ? server.port : (fromFile?.port ?? server.port),
    user: explicit.user ? server.user : (fromFile?.user ?? server.user),
    identityFiles: fromFile?.identityFiles ?? [],
    hops: jump === undefined ? [] : resolveHops(parseProxyJump(jump, field), sshConfigText, context, field),
    unhonoured: fromFile?.unhonoured ?? [],
  };
}

export interface Connector {
  connect(server: ServerConfig): Promise<SshSession>;
  /**
   * A stream to the server's sshd through its jump hosts (undefined when it has none), for a
   * connection made elsewhere (fetching a host key); `release` once done with it.
   */
  streamTo(target: SshTarget, server: string): Promise<{ stream: Duplex; release(): void } | undefined>;
  /** Closes the jump host connections still open (each also closes with its last user). */
  close(): void;
}

export interface ConnectorOptions {
  acceptNew?: boolean;
  onCommand?: (server: string, command: string) => void;
  onLearnedKey?: (server: string, fingerprint: string) => void;
  /** Told once per command what the ssh config sets that nexus does not honour. */
  onWarning?: (message: string) => void;
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

/** Handshakes in flight at once over all addresses: each costs the CLI some CPU. */
const HANDSHAKES_AT_ONCE = 32;

/** One endpoint to log in to: a server, or a jump host. */
interface Login {
  /** For messages and known_hosts advice: the server's name, or the jump host as written. */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
}

/** The same file, links and `~` resolved (a path that cannot be resolved is compared as written). */
function samePath(a: string, b: string): boolean {
  const resolve = (p: string) => {
    const expanded = expandHome(p);
    try {
      return realpathSync(expanded);
    } catch {
      return path.resolve(expanded);
    }
  };
  return resolve(a) === resolve(b);
}

/** The ssh config keywords set for a server that nexus does not honour, each said once per command. */
function unhonouredWarning(
  config: Config,
  behaviour: NexusSshBehaviour,
  warned: Set<string>,
  server: ServerConfig,
  target: SshTarget,
): string | undefined {
  const fresh = target.unhonoured
    .filter((setting) => !sameAsNexus(setting, behaviour, samePath))
    .map((setting) => setting.keyword)
    .filter((k) => !warned.has(k));
  if (fresh.length === 0) return undefined;
  for (const k of fresh) warned.add(k);
  return `${config.ssh.configFile} sets ${fresh.join(", ")} for ${server.host}: nexus does not honour ${fresh.length === 1 ? "it" : "them"} (it reads ${HONOURED_KEYWORDS.filter((k) => k !== "Host" && k !== "Match").join(", ")})`;
}

/** What a login needs before its handshake: the key to offer, the host key check, the key types to negotiate. */
function prepareLogin(
  config: Config,
  env: NodeJS.ProcessEnv,
  knownHosts: KnownHostEntry[],
  who: Login,
  policy: Config["ssh"]["hostKeys"],
): { credentials: Credentials; hostKey: HostKeyCheck; algorithms: ReturnType<typeof hostKeyAlgorithms> } {
  let credentials: Credentials;
  try {
    credentials = loadCredentials(config.ssh, env, who.identityFiles);
  } catch (error) {
    if (error instanceof KeyFileError) throw new SshError(who.name, "auth", error.message);
    throw error;
  }
  checkKey(who.name, credentials);
  const hostKey = new HostKeyCheck(knownHosts, who.host, who.port, policy, config.ssh.knownHosts, who.name);
  // Like OpenSSH: a host already known by some key types negotiates only those, so it cannot
  // be talked into presenting an unknown key of another type (which accept-new would learn).
  const knownTypes = knownHostKeyTypes(knownHosts, who.host, who.port);
  const algorithms = hostKeyAlgorithms(knownTypes);
  if (algorithms?.length === 0) {
    throw new SshError(
      who.name,
      "host-key",
      `known_hosts (${config.ssh.knownHosts}) knows ${who.host} only by key types nexus cannot verify (${knownTypes.join(", ")}); add an ed25519, ecdsa or rsa key with \`${nexusCommand("trust", who.name)}\``,
    );
  }
  return { credentials, hostKey, algorithms };
}

/** How a login reaches its host: through a stream (jump hosts), said "via …"; with a remote shell or not. */
interface LoginRoute {
  sock?: () => Promise<{ stream: Duplex; release(): void } | undefined>;
  via?: string;
  remoteShell?: boolean;
}

/** The session's options for one login, prepared (prepareLogin) and routed. */
function sessionOptions(
  config: Config,
  options: ConnectorOptions,
  who: Login,
  { credentials, hostKey, algorithms }: ReturnType<typeof prepareLogin>,
  sock: { stream: Duplex; release(): void } | undefined,
  route: LoginRoute,
): Parameters<typeof SshSession.connect>[0] {
  return {
    server: who.name,
    host: who.host,
    port: who.port,
    username: who.user,
    privateKey: credentials.privateKey,
    passphrase: credentials.passphrase,
    agent: credentials.agent,
    keySource: credentials.keySource,
    hostKeyAlgorithms: algorithms,
    readyTimeout: config.ssh.readyTimeout,
    keepaliveInterval: config.ssh.keepaliveInterval,
    hostKey,
    onCommand: options.onCommand,
    ...(sock ? { sock: sock.stream, onClose: sock.release } : {}),
    ...(route.via ? { via: route.via } : {}),
    ...(route.remoteShell === false ? { remoteShell: false } : {}),
  };
}

export function createConnector(config: Config, options: ConnectorOptions = {}): Connector {
  const env = options.env ?? process.env;
  let knownHosts: KnownHostEntry[] | undefined;
  let sshConfigText: string | undefined;
  const policy = options.acceptNew ? "accept-new" : config.ssh.hostKeys;
  const handshakes = new HandshakeLimiter(config.ssh.maxStartups, HANDSHAKES_AT_ONCE);
  const warned = new Set<string>();
  const behaviour: NexusSshBehaviour = {
    strictHostKeys: config.ssh.hostKeys === "strict" && !options.acceptNew,
    knownHosts: config.ssh.knownHosts,
    usesAgent: config.ssh.agent && Boolean(env.SSH_AUTH_SOCK),
  };

  /** One SSH login (under the handshake cap), its host key checked like any server's. */
  const login = async (who: Login, extra: LoginRoute): Promise<SshSession> => {
    knownHosts ??= readKnownHosts(config.ssh.knownHosts);
    const { credentials, hostKey, algorithms } = prepareLogin(config, env, knownHosts, who, policy);
    // The stream through the jump hosts first: their own logins take handshake slots too, which
    // a server's login holding one while it waits for them could starve.
    const sock = await extra.sock?.();
    const session = await handshakes.run(who.host, () =>
      SshSession.connect(
        sessionOptions(config, options, who, { credentials, hostKey, algorithms }, sock, extra),
      ),
    );
    const learned = hostKey.persistLearned();
    if (learned) {
      knownHosts = undefined;
      options.onLearnedKey?.(who.name, learned);
    }
    return session;
  };

  const jumps = new JumpPool(async (hop, via) => {
    const session = await login(
      { name: hop.label, host: hop.host, port: hop.port, user: hop.user, identityFiles: hop.identityFiles },
      {
        remoteShell: false,
        ...(via ? { sock: async () => ({ stream: await via(hop.host, hop.port), release: () => {} }) } : {}),
      },
    );
    return session;
  });

  const warnUnhonoured = (server: ServerConfig, target: SshTarget) => {
    const warning = unhonouredWarning(config, behaviour, warned, server, target);
    if (warning) options.onWarning?.(warning);
  };

  const streamTo = async (target: SshTarget, server: string) => {
    if (target.hops.length === 0) return undefined;
    try {
      return await jumps.stream(target.hops, target.host, target.port);
    } catch (error) {
      throw viaError(server, target, error);
    }
  };

  return {
    async connect(server) {
      sshConfigText ??= readSshConfig(config.ssh.configFile);
      const target = resolveTarget(server, sshConfigText);
      warnUnhonoured(server, target);
      return login(
        { name: server.name, ...target },
        target.hops.length > 0
          ? {
              sock: () => streamTo(target, server.name),
              via: `via ${target.hops.map((h) => h.label).join(", ")}`,
            }
          : {},
      );
    },
    streamTo,
    close: () => jumps.closeAll(),
  };
}

/** A jump host that failed, said as the server's failure: which hop, and why. */
function viaError(server: string, target: SshTarget, error: unknown): Error {
  if (!(error instanceof SshError)) return error as Error;
  const message = error.message.startsWith(`${error.server}: `)
    ? error.message.slice(error.server.length + 2)
    : error.message;
  const hop = target.hops.find((h) => h.label === error.server);
  return new SshError(
    server,
    error.kind,
    hop ? `jump host ${hop.label} (${hop.user}@${hop.host}:${hop.port}): ${message}` : message,
  );
}

/**
 * Handshakes in flight: at most `perAddress` to one address (sshd's MaxStartups drops
 * unauthenticated connections above its first number, 10 by default) and `total` overall.
 */
export class HandshakeLimiter {
  private running = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly waiting: { address: string; start(): void }[] = [];

  constructor(
    private readonly maxPerAddress: number,
    private readonly maxTotal: number,
  ) {}

  async run<T>(address: string, work: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.waiting.push({ address, start: resolve });
      this.next();
    });
    try {
      return await work();
    } finally {
      this.running--;
      this.perAddress.set(address, (this.perAddress.get(address) ?? 1) - 1);
      this.next();
    }
  }

  private next(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.maxTotal; ) {
      const entry = this.waiting[i] as { address: string; start(): void };
      if ((this.perAddress.get(entry.address) ?? 0) >= this.maxPerAddress) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running++;
      this.perAddress.set(entry.address, (this.perAddress.get(entry.address) ?? 0) + 1);
      entry.start();
    }
  }
}
