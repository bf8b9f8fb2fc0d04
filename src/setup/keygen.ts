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
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
  mkdirSync(path.dirname(keyPath), { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, pair.private, { mode: 0o600, flag: "wx" });
  writeFileSync(`${keyPath}.pub`, `${pair.public.trim()}\n`, { mode: 0o644 });
  return { path: keyPath, publicKey: pair.public.trim(), created: true };
}
