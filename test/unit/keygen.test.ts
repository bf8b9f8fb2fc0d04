import { createPrivateKey, createPublicKey, verify } from "node:crypto";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { openSshPrivateKey, openSshPublicKey } from "../../src/setup/keygen.js";

// A seed whose public key starts with two zero bytes: the key ssh2's own generator truncates
// (mscdex/ssh2#1390) and one in 256 random keys looks like.
const SEED = Buffer.from(`${"00".repeat(31)}24`, "hex");
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const nodeKey = createPrivateKey({
  key: Buffer.concat([PKCS8_ED25519_PREFIX, SEED]),
  format: "der",
  type: "pkcs8",
});
const PUBLIC = Buffer.from(createPublicKey(nodeKey).export({ format: "jwk" }).x as string, "base64url");

describe("the deploy key's OpenSSH encoding", () => {
  it("keeps a public key's leading zero bytes", () => {
    expect(PUBLIC.subarray(0, 2).toString("hex")).toBe("0000");
    const line = openSshPublicKey(PUBLIC, "nexus@ci");
    const parsed = ssh2.utils.parseKey(line);
    if (parsed instanceof Error) throw parsed;
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    expect(key?.type).toBe("ssh-ed25519");
    expect(line.endsWith(" nexus@ci")).toBe(true);
  });

  it.each(["", "c", "nexus@a-host-name-of-some-length", "x".repeat(7)])(
    "writes a private key ssh2 reads back, signing as the public key says (comment %j)",
    (comment) => {
      const text = openSshPrivateKey({
        seed: SEED,
        publicKey: PUBLIC,
        comment,
        checkInt: Buffer.from("a1b2c3d4", "hex"),
      });
      expect(text).toMatch(
        /^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END OPENSSH PRIVATE KEY-----\n$/,
      );
      expect(text.split("\n").every((line) => line.length <= 70)).toBe(true);
      const parsed = ssh2.utils.parseKey(text);
      if (parsed instanceof Error) throw parsed;
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!key) throw new Error("no key");
      expect(key.type).toBe("ssh-ed25519");
      expect(key.comment).toBe(comment);
      expect(`ssh-ed25519 ${key.getPublicSSH().toString("base64")}`).toBe(openSshPublicKey(PUBLIC, ""));
      const data = Buffer.from("nexus");
      const signature = key.sign(data);
      if (signature instanceof Error) throw signature;
      expect(verify(null, data, createPublicKey(nodeKey), signature)).toBe(true);
    },
  );

  it("refuses material that is not an ed25519 key", () => {
    expect(() =>
      openSshPrivateKey({
        seed: SEED.subarray(1),
        publicKey: PUBLIC,
        comment: "",
        checkInt: Buffer.alloc(4),
      }),
    ).toThrow(/32-byte/);
  });
});
