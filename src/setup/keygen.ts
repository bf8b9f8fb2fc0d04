import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";

export interface DeployKey {
  path: string;
  publicKey: string;
  created: boolean;
}

/** The public key line of a private key file (its .pub beside it, else derived from the key). */
export function publicKeyOf(keyPath: string, passphrase?: string): string {
  if (existsSync(`${keyPath}.pub`)) return readFileSync(`${keyPath}.pub`, "utf8").trim();
  const parsed = ssh2.utils.parseKey(readFileSync(keyPath), passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error)
    throw new Error(`cannot read ${keyPath}: ${key instanceof Error ? key.message : "no key"}`);
  return `${key.type} ${key.getPublicSSH().toString("base64")}`;
}

/** A new ed25519 key pair at `keyPath` (private 0600, public .pub), unless the key exists. */
export function ensureDeployKey(keyPath: string, comment = `nexus@${os.hostname()}`): DeployKey {
  if (existsSync(keyPath)) return { path: keyPath, publicKey: publicKeyOf(keyPath), created: false };
  const { seed, publicKey } = newEd25519Key();
  const privateText = openSshPrivateKey({ seed, publicKey, comment, checkInt: randomBytes(4) });
  const publicLine = openSshPublicKey(publicKey, comment);
  mkdirSync(path.dirname(keyPath), { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, privateText, { mode: 0o600, flag: "wx" });
  writeFileSync(`${keyPath}.pub`, `${publicLine}\n`, { mode: 0o644 });
  return { path: keyPath, publicKey: publicLine, created: true };
}

/**
 * Node generates the key; we write OpenSSH's format ourselves because ssh2's
 * `generateKeyPairSync("ed25519")` strips every leading zero byte of the public key, so one key
 * in 256 comes out 31 bytes long and unreadable (mscdex/ssh2#1390, #1513, open in 1.17).
 */
function newEd25519Key(): { seed: Buffer; publicKey: Buffer } {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  if (!jwk.d || !jwk.x) throw new Error("ed25519 key generation returned no key material");
  return { seed: Buffer.from(jwk.d, "base64url"), publicKey: Buffer.from(jwk.x, "base64url") };
}

const KEY_TYPE = "ssh-ed25519";

function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function publicBlob(publicKey: Buffer): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(publicKey)]);
}

/** `ssh-ed25519 <base64> <comment>`, the authorized_keys line. */
export function openSshPublicKey(publicKey: Buffer, comment: string): string {
  return `${KEY_TYPE} ${publicBlob(publicKey).toString("base64")}${comment ? ` ${comment}` : ""}`;
}

/** An unencrypted `openssh-key-v1` private key file (PROTOCOL.key in OpenSSH's sources). */
export function openSshPrivateKey(input: {
  seed: Buffer;
  publicKey: Buffer;
  comment: string;
  checkInt: Buffer;
}): string {
  const { seed, publicKey, comment, checkInt } = input;
  if (seed.length !== 32 || publicKey.length !== 32 || checkInt.length !== 4)
    throw new Error("an ed25519 key is a 32-byte seed and a 32-byte public key");
  const unpadded = Buffer.concat([
    checkInt,
    checkInt,
    sshString(KEY_TYPE),
    sshString(publicKey),
    sshString(Buffer.concat([seed, publicKey])),
    sshString(comment),
  ]);
  const padding = Buffer.from(
    Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, index) => index + 1),
  );
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    uint32(1),
    sshString(publicBlob(publicKey)),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
