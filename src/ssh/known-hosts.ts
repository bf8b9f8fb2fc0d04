import { createHash, createHmac, randomBytes } from "node:crypto";

/**
 * OpenSSH known_hosts parsing and host key checking, meant to back an ssh2
 * `hostVerifier(key: Buffer) => boolean`, where `key` is the raw SSH
 * wire-format public key blob.
 *
 * Matching follows OpenSSH's hostfile.c / match.c (checked against OpenSSH 9.2).
 */

export type KnownHostsMarker = "revoked" | "cert-authority";

export type KnownHostsHosts =
  | { kind: "patterns"; patterns: string[] }
  | { kind: "hashed"; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  /** 1-based line number in the parsed text. */
  line: number;
  marker: KnownHostsMarker | null;
  hosts: KnownHostsHosts;
  /** Key type as written on the line; always equal to the type inside `key`. */
  keyType: string;
  /** Wire-format public key blob. */
  key: Buffer;
  comment: string;
}

export interface KnownHostsWarning {
  line: number;
  message: string;
}

export interface HostKeyInfo {
  type: string;
  fingerprint: string;
  /** Line of the known_hosts entry holding this key. */
  line: number;
}

export type HostKeyCheck =
  | { status: "match" }
  | { status: "unknown" }
  | { status: "changed"; expected: HostKeyInfo[] }
  | { status: "revoked" };

const HASH_MAGIC = "|1|";
const SHA1_LENGTH = 20;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Like `parseKnownHosts`, but also reports why lines were skipped. */
export function parseKnownHostsWithWarnings(text: string): {
  entries: KnownHostEntry[];
  warnings: KnownHostsWarning[];
} {
  const entries: KnownHostEntry[] = [];
  const warnings: KnownHostsWarning[] = [];
  const lines = text.split("\n");
  for (const [index, rawLine] of lines.entries()) {
    const line = index + 1;
    const result = parseLine(rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine, line);
    if (result === null) continue;
    if (typeof result === "string") warnings.push({ line, message: result });
    else entries.push(result);
  }
  return { entries, warnings };
}

/** Parses known_hosts text. Comments, blank and malformed lines are skipped; never throws. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  return parseKnownHostsWithWarnings(text).entries;
}

/** The host string OpenSSH looks up (and hashes): `host` on port 22, `[host]:port` otherwise. */
export function hostPatternFor(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Checks a server's host key against parsed known_hosts entries, like `ssh`
 * with StrictHostKeyChecking does:
 * - an `@revoked` line matching the host and holding this key → "revoked" (wins over everything);
 * - a plain line matching the host and holding this key → "match";
 * - a plain line matching the host with a key of the same type → "changed";
 * - otherwise → "unknown".
 * `@cert-authority` lines are ignored: ssh2 presents plain host keys only.
 *
 * Deliberate difference from OpenSSH: when the host is known only with keys of
 * *other* types, OpenSSH reports HOST_CHANGED (it avoids getting there by
 * negotiating a known key type first, see `knownHostKeyTypes`). We report
 * "unknown" instead, so a caller that accepts unknown keys must pin
 * `algorithms.serverHostKey` to the known types if it wants OpenSSH's guarantee.
 *
 * Like OpenSSH, when `[host]:port` has no entry at all, the entries for the bare
 * `host` are consulted too, and only a match (or revocation) there counts.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyBlob: Buffer,
): HostKeyCheck {
  const name = host.toLowerCase();
  const result = checkHostString(entries, hostPatternFor(name, port), keyBlob);
  if (result.status === "unknown" && port !== 22) {
    const withoutPort = checkHostString(entries, name, keyBlob);
    if (withoutPort.status === "match" || withoutPort.status === "revoked") return withoutPort;
  }
  return result;
}

/**
 * Key types known for the host (plain entries only), in file order without
 * duplicates. OpenSSH prefers these when negotiating the host key algorithm.
 */
export function knownHostKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const hostString = hostPatternFor(host.toLowerCase(), port);
  const types = entries
    .filter((entry) => entry.marker === null && hostsMatch(entry.hosts, hostString))
    .map((entry) => entry.keyType);
  return [...new Set(types)];
}

/** `SHA256:` + unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named by the blob's first length-prefixed string. Throws on a malformed blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  const type = tryKeyTypeOf(keyBlob);
  if (type === undefined) throw new Error("Malformed SSH public key blob: no key type string");
  return type;
}

/** A known_hosts line (without trailing newline) recording `keyBlob` for the host. */
export function formatKnownHostsLine(
  host: string,
  port: number,
  keyBlob: Buffer,
  options: { hash?: boolean; salt?: Buffer } = {},
): string {
  if (host === "" || /[\s,]/.test(host)) {
    throw new Error(`Cannot write a known_hosts entry for host ${JSON.stringify(host)}`);
  }
  // OpenSSH lowercases the name before writing or hashing it.
  const hostString = hostPatternFor(host.toLowerCase(), port);
  let hostField = hostString;
  if (options.hash) {
    const salt = options.salt ?? randomBytes(SHA1_LENGTH);
    if (salt.length !== SHA1_LENGTH) {
      throw new RangeError(`known_hosts salt must be ${SHA1_LENGTH} bytes, got ${salt.length}`);
    }
    hostField = `${HASH_MAGIC}${salt.toString("base64")}|${hmacSha1(salt, hostString).toString("base64")}`;
  }
  return `${hostField} ${keyTypeOf(keyBlob)} ${keyBlob.toString("base64")}`;
}

function checkHostString(
  entries: readonly KnownHostEntry[],
  hostString: string,
  keyBlob: Buffer,
): HostKeyCheck {
  const relevant = entries.filter((entry) => hostsMatch(entry.hosts, hostString));
  if (relevant.some((entry) => entry.marker === "revoked" && entry.key.equals(keyBlob))) {
    return { status: "revoked" };
  }
  const plain = relevant.filter((entry) => entry.marker === null);
  if (plain.some((entry) => entry.key.equals(keyBlob))) return { status: "match" };
  const type = tryKeyTypeOf(keyBlob);
  const sameType = plain.filter((entry) => entry.keyType === type);
  if (sameType.length > 0) {
    return {
      status: "changed",
      expected: sameType.map((entry) => ({
        type: entry.keyType,
        fingerprint: fingerprintSha256(entry.key),
        line: entry.line,
      })),
    };
  }
  return { status: "unknown" };
}

function hostsMatch(hosts: KnownHostsHosts, hostString: string): boolean {
  if (hosts.kind === "hashed") return hmacSha1(hosts.salt, hostString).equals(hosts.hash);
  // OpenSSH match_pattern_list: any negated match vetoes the whole line.
  let positive = false;
  for (const pattern of hosts.patterns) {
    const negated = pattern.startsWith("!");
    const glob = (negated ? pattern.slice(1) : pattern).toLowerCase();
    if (globMatch(hostString, glob)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** OpenSSH match_pattern: `*` is any run, `?` any one character, everything else literal. */
function globMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === "?" || pattern[p] === text[t])) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === "*") {
      starP = p++;
      starT = t;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

function hmacSha1(salt: Buffer, hostString: string): Buffer {
  return createHmac("sha1", salt).update(hostString).digest();
}

function tryKeyTypeOf(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || 4 + length > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + length).toString("latin1");
}

/** null for comments and blank lines, a warning string for malformed lines. */
function parseLine(text: string, line: number): KnownHostEntry | string | null {
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, "");
  if (trimmed === "" || trimmed.startsWith("#")) return null;
  const fields = trimmed.split(/[ \t]+/);

  let marker: KnownHostsMarker | null = null;
  if (fields[0]?.startsWith("@")) {
    const name = fields.shift();
    if (name === "@revoked") marker = "revoked";
    else if (name === "@cert-authority") marker = "cert-authority";
    else return `unknown marker ${name}`;
  }

  const [hostField, keyType, keyBase64, ...rest] = fields;
  if (hostField === undefined || keyType === undefined || keyBase64 === undefined) {
    return "expected a host list, key type and key";
  }
  if (hostField.startsWith("@")) return "more than one marker";
  if (keyType.startsWith("#") || keyBase64.startsWith("#")) return "truncated before the key";

  const hosts = parseHosts(hostField);
  if (typeof hosts === "string") return hosts;

  if (!BASE64.test(keyBase64) || keyBase64.length % 4 === 1) return "key is not valid base64";
  const key = Buffer.from(keyBase64, "base64");
  const blobType = tryKeyTypeOf(key);
  if (blobType === undefined) return "key blob has no key type";
  if (blobType !== keyType) return `key type ${keyType} does not match the key's own type ${blobType}`;

  return { line, marker, hosts, keyType, key, comment: rest.join(" ") };
}

function parseHosts(field: string): KnownHostsHosts | string {
  if (!field.startsWith("|")) return { kind: "patterns", patterns: field.split(",") };
  if (!field.startsWith(HASH_MAGIC)) return "unsupported hashed host format";
  const [saltBase64, hashBase64, ...extra] = field.slice(HASH_MAGIC.length).split("|");
  if (saltBase64 === undefined || hashBase64 === undefined || extra.length > 0) {
    return "malformed hashed host";
  }
  if (!BASE64.test(saltBase64) || !BASE64.test(hashBase64)) return "malformed hashed host";
  const salt = Buffer.from(saltBase64, "base64");
  const hash = Buffer.from(hashBase64, "base64");
  if (salt.length !== SHA1_LENGTH || hash.length !== SHA1_LENGTH) return "malformed hashed host";
  return { kind: "hashed", salt, hash };
}
