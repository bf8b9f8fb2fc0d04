import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import path from "node:path";
import { nexusCommand } from "../config/invocation.js";
import { UsageError } from "../errors.js";
import {
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  hostPatternFor,
  type KnownHostEntry,
  keyTypeOf,
  parseKnownHosts,
} from "./known-hosts.js";

export type HostKeyPolicy = "strict" | "accept-new";

/** What SshSession needs from a host key check: a synchronous verdict, and why it refused. */
export interface HostKeyVerifier {
  /** Must return a boolean synchronously: ssh2 takes any truthy value, a Promise included, as "accept". */
  verify(key: Buffer): boolean;
  problem(): string | undefined;
}

// Host key algorithms ssh2 can verify, by the key type written in known_hosts.
const ALGORITHMS_BY_KEY_TYPE: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  // An RSA key signs with SHA-2 when both ends can; ssh-rsa (SHA-1) last, as OpenSSH does.
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ssh-dss": ["ssh-dss"],
};

/**
 * The host key algorithms to offer for a host known by `knownTypes`: undefined when the host is
 * not known at all (any algorithm, then the key is checked), otherwise only the algorithms of the
 * known types, so the server cannot switch to another key type. An empty list means no known type
 * is one ssh2 can verify.
 */
export function hostKeyAlgorithms(knownTypes: readonly string[]): string[] | undefined {
  if (knownTypes.length === 0) return undefined;
  return [...new Set(knownTypes.flatMap((type) => ALGORITHMS_BY_KEY_TYPE[type] ?? []))];
}

function hostKeyFileType(type: string): string {
  if (type.startsWith("ecdsa-")) return "ecdsa";
  return type.replace(/^ssh-/, "").replace(/^dss$/, "dsa");
}

/** True when the file holds hashed host names (HashKnownHosts): new lines are hashed too. */
export function usesHashedEntries(entries: readonly KnownHostEntry[]): boolean {
  return entries.some((entry) => entry.hosts.kind === "hashed");
}

/**
 * Appends a host key line to known_hosts (0600, directory created), hashed if the file already is.
 * A file whose last line has no newline (written by hand, or by a tool that omits it) gets one
 * first: glued onto that line, the new entry would make both hosts unknown.
 */
export function appendKnownHost(file: string, host: string, port: number, key: Buffer): void {
  const hash = usesHashedEntries(readKnownHosts(file));
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const separator = endsWithoutNewline(file) ? "\n" : "";
  appendFileSync(file, `${separator}${formatKnownHostsLine(host, port, key, { hash })}\n`, { mode: 0o600 });
}

/** True when the file exists, is not empty, and its last byte is not a newline. */
function endsWithoutNewline(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return false;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

export function readKnownHosts(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(file, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return [];
    // A directory, no permission: the config's field is wrong, said as such (exit 2).
    if (code) throw new UsageError(`ssh.knownHosts: cannot read ${file} (${code})`);
    throw error;
  }
}

/**
 * Verifies one host's key during the SSH handshake, synchronously, and remembers why it
 * refused so the connect error can say so. With "accept-new", an unknown key is accepted and
 * appended to known_hosts once the connection is up; a changed or revoked key is always refused.
 */
export class HostKeyCheck implements HostKeyVerifier {
  private refusal: string | undefined;
  private learned: Buffer | undefined;
  seen: { type: string; fingerprint: string } | undefined;

  constructor(
    private readonly entries: KnownHostEntry[],
    private readonly host: string,
    private readonly port: number,
    private readonly policy: HostKeyPolicy,
    private readonly knownHostsFile: string,
    /** The server's name in the nexus config, for the advice printed with an unknown key. */
    private readonly server?: string,
  ) {}

  verify(key: Buffer): boolean {
    const type = keyTypeOf(key);
    const fingerprint = fingerprintSha256(key);
    this.seen = { type, fingerprint };
    const name = hostPatternFor(this.host, this.port);
    const result = checkHostKey(this.entries, this.host, this.port, key);
    switch (result.status) {
      case "match":
        return true;
      case "revoked":
        this.refusal = `the host key of ${name} (${type} ${fingerprint}) is marked @revoked in ${this.knownHostsFile}`;
        return false;
      case "changed":
        this.refusal = [
          `HOST KEY CHANGED for ${name}: possible man-in-the-middle attack.`,
          `  offered: ${type} ${fingerprint}`,
          ...result.expected.map((e) => `  known:   ${e.type} ${e.fingerprint} (${this.knownHostsFile})`),
          "  If the server was really re-keyed, remove the old line from known_hosts",
          `  (ssh-keygen -R '${name}' -f ${this.knownHostsFile}) and trust the new key.`,
        ].join("\n");
        return false;
      case "unknown":
        if (this.policy === "accept-new") {
          this.learned = key;
          return true;
        }
        this.refusal = [
          `unknown host key for ${name}: ${type} ${fingerprint}`,
          `  Check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_${hostKeyFileType(type)}_key.pub),`,
          `  then trust it with \`${this.server ? nexusCommand("trust", this.server) : "nexus trust <server>"}\`, or set ssh.hostKeys to "accept-new" (or pass --accept-new).`,
        ].join("\n");
        return false;
    }
  }

  problem(): string | undefined {
    return this.refusal;
  }

  /** After a successful connection: records a key learned under accept-new. */
  persistLearned(): string | undefined {
    if (!this.learned) return undefined;
    appendKnownHost(this.knownHostsFile, this.host, this.port, this.learned);
    const learned = this.learned;
    this.learned = undefined;
    return fingerprintSha256(learned);
  }
}
