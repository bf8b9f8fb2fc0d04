import type { ClientChannel } from "ssh2";
import { UsageError } from "../errors.js";
import { formatProxyJump, type HopSpec, parseProxyJump } from "./proxy-jump.js";
import { resolveSshConfigHost, type SshConfigContext } from "./ssh-config.js";

export { formatProxyJump, type HopSpec, parseProxyJump };

/** A hop resolved through ~/.ssh/config (its alias's HostName, User, Port and IdentityFile), as ssh would. */
export interface Hop {
  /** As written in proxyJump or ProxyJump, for messages. */
  label: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
}

/** Chains this long are refused (a hop's own ProxyJump naming an earlier one would loop). */
const MAX_HOPS = 8;

/**
 * Resolves a chain through the ssh config: each hop's alias gives its HostName, Port, User and
 * IdentityFile (what the hop spells out wins), its user else the local user, as ssh does; the
 * first hop's own ProxyJump, if any, comes before it (ssh reaches that hop through its jump).
 */
export function resolveHops(
  specs: readonly HopSpec[],
  sshConfigText: string,
  context: SshConfigContext,
  field = "proxyJump",
  depth = 0,
): Hop[] {
  if (specs.length === 0) return [];
  if (depth + specs.length > MAX_HOPS)
    throw new UsageError(`${field}: more than ${MAX_HOPS} jump hosts (a loop?)`);
  const hops = specs.map((spec): Hop => {
    const fromFile = sshConfigText ? resolveSshConfigHost(sshConfigText, spec.host, context) : undefined;
    const label = formatProxyJump([spec]);
    return {
      label,
      host: fromFile?.hostName ?? spec.host,
      port: spec.port ?? fromFile?.port ?? 22,
      user: spec.user ?? fromFile?.user ?? context.localUser,
      identityFiles: fromFile?.identityFiles ?? [],
    };
  });
  const first = specs[0] as HopSpec;
  const own = sshConfigText ? resolveSshConfigHost(sshConfigText, first.host, context).proxyJump : undefined;
  if (own === undefined) return hops;
  const before = parseProxyJump(own, `ProxyJump of ${first.host} in the ssh config`);
  return [...resolveHops(before, sshConfigText, context, field, depth + specs.length), ...hops];
}

/** A hop's connection, able to open a TCP connection from there (ssh -W, ssh2's forwardOut). */
export interface HopConnection {
  forward(host: string, port: number): Promise<ClientChannel>;
  close(): void;
  readonly alive: boolean;
}

/**
 * The jump host connections of one command, shared: every server behind a bastion goes through
 * one connection to it (a channel each), never one connection per server as `ssh -J` makes. A
 * hop's connection closes when the last connection through it has.
 */
export class JumpPool {
  private readonly connections = new Map<string, Promise<HopConnection>>();
  /** Connections (and streams being opened) that go through each chain prefix. */
  private readonly users = new Map<string, number>();

  constructor(
    /** Connects to `hop`, through `via` when it is not the first of its chain. */
    private readonly connectHop: (
      hop: Hop,
      via: ((host: string, port: number) => Promise<ClientChannel>) | undefined,
    ) => Promise<HopConnection>,
  ) {}

  /**
   * A stream to host:port through the chain (the last hop opens it), for ssh2's `sock`; `release`
   * once the connection over it has closed.
   */
  async stream(
    hops: readonly Hop[],
    host: string,
    port: number,
  ): Promise<{ stream: ClientChannel; release(): void }> {
    const keys = hops.map((_, i) => this.key(hops.slice(0, i + 1)));
    for (const key of keys) this.users.set(key, (this.users.get(key) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const key of keys) {
        const left = (this.users.get(key) ?? 1) - 1;
        if (left > 0) {
          this.users.set(key, left);
          continue;
        }
        this.users.delete(key);
        const connection = this.connections.get(key);
        this.connections.delete(key);
        void connection?.then(
          (c) => c.close(),
          () => {},
        );
      }
    };
    try {
      const last = await this.connection(hops);
      return { stream: await last.forward(host, port), release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Closes every hop connection (the command ends). */
  closeAll(): void {
    for (const connection of this.connections.values())
      void connection.then(
        (c) => c.close(),
        () => {},
      );
    this.connections.clear();
    this.users.clear();
  }

  private key(hops: readonly Hop[]): string {
    return hops.map((h) => `${h.user}@${h.host}:${h.port}`).join(" > ");
  }

  /** The chain's last hop connected (through the ones before it), opened again if it dropped. */
  private connection(hops: readonly Hop[]): Promise<HopConnection> {
    const key = this.key(hops);
    const known = this.connections.get(key);
    if (known) return known.then((c) => (c.alive ? c : this.open(hops, key)));
    return this.open(hops, key);
  }

  private open(hops: readonly Hop[], key: string): Promise<HopConnection> {
    const hop = hops.at(-1) as Hop;
    const before = hops.slice(0, -1);
    const via =
      before.length === 0
        ? undefined
        : (host: string, port: number) => this.connection(before).then((c) => c.forward(host, port));
    const connection = this.connectHop(hop, via);
    this.connections.set(key, connection);
    // A failed connection is not kept: the next stream tries again.
    connection.catch(() => {
      if (this.connections.get(key) === connection) this.connections.delete(key);
    });
    return connection;
  }
}
