import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
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

export function readKnownHosts(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/**
 * Verifies one host's key during the SSH handshake, synchronously, and remembers why it
 * refused so the connect error can say so. With "accept-new", an unknown key is accepted and
 * appended to known_hosts once the connection is up; a changed or revoked key is always refused.
 */
export class HostKeyCheck {
  private refusal: string | undefined;
  private learned: Buffer | undefined;
  seen: { type: string; fingerprint: string } | undefined;

  constructor(
    private readonly entries: KnownHostEntry[],
    private readonly host: string,
    private readonly port: number,
    private readonly policy: HostKeyPolicy,
    private readonly knownHostsFile: string,
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
          `  Check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_${type.replace(/^ssh-/, "")}_key.pub),`,
          '  then trust it with `nexus trust <server>`, or set ssh.hostKeys to "accept-new" (or pass --accept-new).',
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
    mkdirSync(path.dirname(this.knownHostsFile), { recursive: true });
    appendFileSync(this.knownHostsFile, `${formatKnownHostsLine(this.host, this.port, this.learned)}\n`, {
      mode: 0o600,
    });
    const learned = this.learned;
    this.learned = undefined;
    return fingerprintSha256(learned);
  }
}
