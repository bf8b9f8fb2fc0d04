import { createHmac, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { appendKnownHost, readKnownHosts } from "../../src/ssh/host-keys.js";
import {
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  hostPatternFor,
  type KnownHostEntry,
  keyTypeOf,
  knownHostKeyTypes,
  parseKnownHosts,
  parseKnownHostsWithWarnings,
} from "../../src/ssh/known-hosts.js";

// Fixed keys; fingerprints and hashed lines below were produced by OpenSSH 9.2
// (`ssh-keygen -lf`, `ssh-keygen -H -f`).
const ED25519_B64 = "AAAAC3NzaC1lZDI1NTE5AAAAILnTHcTFeU9+kvvcGhTqhh+iz5QuiWdt3aRYc/xxQoUT";
const ED25519_FP = "SHA256:OM5s5NJ3jHJSCuQni6dHZmW2WXgdxK41XfigboZYnno";
const ECDSA_B64 =
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHKaeuo2E04NqM5G1ns7Q3CULn0yxGbNs5FBmaUXXMDD+wNfHI0dxIot5t4QoXraBSjrs94ZKzBj4K4zuN7YH78=";
const ECDSA_FP = "SHA256:8YXiplwaZrOxwGVazTcVAJt77un0/8yRi1VJw2lB4l0";
const RSA_B64 =
  "AAAAB3NzaC1yc2EAAAADAQABAAAAgQCaAb0yVX9UVPtLBCh1ZRRboHI0VNgBXBurBczj2JVGH7+Z6wG6BI6x6wQIqD8BLtq+XaEqFmlTgYqAmIyu44FikJhay5vD3lcFmUA9i6Z9KioYXt1sUV8+CkE4wt2HIWh+5xi2l3amuEO5rhfrleMAqZsbnsm8yiuJ1/Yxr587Zw==";
const RSA_FP = "SHA256:vRWVtW0AFVI+djuI8dM2xzscmHtWS0W3A9IzcLfZbYA";

// `ssh-keygen -H` output for "deploy.example.com" and "[deploy.example.com]:2222" with ED25519_B64.
const HASHED_PORT_22 = `|1|1CgJFc1I+8xaO3ZkZJHuz4p6uUA=|bGtnK7V30iFnD2V935GHbG2vbJk= ssh-ed25519 ${ED25519_B64}`;
const HASHED_PORT_2222 = `|1|hD6CMTrdc72KvxnavzUOmeRR2+o=|ox655EnDZLqpR7GCACY5YtDHFLk= ssh-ed25519 ${ED25519_B64}`;

const fixedEd25519 = Buffer.from(ED25519_B64, "base64");
const fixedEcdsa = Buffer.from(ECDSA_B64, "base64");

function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A fresh ed25519 public key in SSH wire format. */
function newEd25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync("ed25519");
  const jwk = publicKey.export({ format: "jwk" });
  if (jwk.x === undefined) throw new Error("ed25519 JWK without x");
  return Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.from(jwk.x, "base64url"))]);
}

function line(hosts: string, blob: Buffer, marker = ""): string {
  return `${marker ? `${marker} ` : ""}${hosts} ${keyTypeOf(blob)} ${blob.toString("base64")}`;
}

function check(lines: string[], host: string, port: number, blob: Buffer) {
  return checkHostKey(parseKnownHosts(lines.join("\n")), host, port, blob);
}

function hashedHost(hostString: string, salt: Buffer): string {
  const hash = createHmac("sha1", salt).update(hostString).digest("base64");
  return `|1|${salt.toString("base64")}|${hash}`;
}

describe("keyTypeOf / fingerprintSha256", () => {
  it("reads the key type from the blob", () => {
    expect(keyTypeOf(fixedEd25519)).toBe("ssh-ed25519");
    expect(keyTypeOf(fixedEcdsa)).toBe("ecdsa-sha2-nistp256");
    expect(keyTypeOf(Buffer.from(RSA_B64, "base64"))).toBe("ssh-rsa");
    expect(keyTypeOf(newEd25519Blob())).toBe("ssh-ed25519");
  });

  it("throws on a malformed blob", () => {
    expect(() => keyTypeOf(Buffer.alloc(0))).toThrow(/Malformed/);
    expect(() => keyTypeOf(Buffer.from([0, 0, 0, 9, 0x61]))).toThrow(/Malformed/);
  });

  it("matches ssh-keygen -l output", () => {
    expect(fingerprintSha256(fixedEd25519)).toBe(ED25519_FP);
    expect(fingerprintSha256(fixedEcdsa)).toBe(ECDSA_FP);
    expect(fingerprintSha256(Buffer.from(RSA_B64, "base64"))).toBe(RSA_FP);
  });

  it("is unpadded base64", () => {
    expect(fingerprintSha256(newEd25519Blob())).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("hostPatternFor", () => {
  it("omits port 22 and brackets other ports", () => {
    expect(hostPatternFor("example.com", 22)).toBe("example.com");
    expect(hostPatternFor("example.com", 2222)).toBe("[example.com]:2222");
    expect(hostPatternFor("::1", 2200)).toBe("[::1]:2200");
  });
});

describe("parseKnownHosts", () => {
  it("parses plain, marked, hashed and commented entries and skips comments and blanks", () => {
    const text = [
      "# a comment",
      "",
      "   ",
      `  web1.example.com,10.0.0.1 ssh-ed25519 ${ED25519_B64} root@web1`,
      `@cert-authority *.example.com ecdsa-sha2-nistp256 ${ECDSA_B64}`,
      `@revoked\t*\tssh-rsa\t${RSA_B64}   old key   retired`,
      HASHED_PORT_22,
      "\t# indented comment",
    ].join("\n");
    const { entries, warnings } = parseKnownHostsWithWarnings(text);
    expect(warnings).toEqual([]);
    expect(entries).toHaveLength(4);

    const [plain, ca, revoked, hashed] = entries as [
      KnownHostEntry,
      KnownHostEntry,
      KnownHostEntry,
      KnownHostEntry,
    ];
    expect(plain).toMatchObject({
      line: 4,
      marker: null,
      hosts: { kind: "patterns", patterns: ["web1.example.com", "10.0.0.1"] },
      keyType: "ssh-ed25519",
      comment: "root@web1",
    });
    expect(plain.key.equals(fixedEd25519)).toBe(true);
    expect(ca).toMatchObject({
      line: 5,
      marker: "cert-authority",
      keyType: "ecdsa-sha2-nistp256",
      comment: "",
    });
    expect(revoked).toMatchObject({
      line: 6,
      marker: "revoked",
      keyType: "ssh-rsa",
      comment: "old key retired",
    });
    expect(hashed.hosts.kind).toBe("hashed");
    expect(hashed.line).toBe(7);
  });

  it("handles CRLF line endings", () => {
    const entries = parseKnownHosts(`# c\r\nhost ssh-ed25519 ${ED25519_B64}\r\n\r\n`);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.key.equals(fixedEd25519)).toBe(true);
    expect(entries[0]?.comment).toBe("");
  });

  it("skips malformed lines with a warning and never throws", () => {
    const malformed = [
      "hostonly",
      "host ssh-ed25519",
      `host # ssh-ed25519 ${ED25519_B64}`,
      "host ssh-ed25519 not*base64",
      `host ssh-rsa ${ED25519_B64}`,
      "host ssh-ed25519 AAAA",
      `@bogus host ssh-ed25519 ${ED25519_B64}`,
      `@revoked @revoked host ssh-ed25519 ${ED25519_B64}`,
      `@revoked`,
      `|2|abc|def ssh-ed25519 ${ED25519_B64}`,
      `|1|notbase64!|bGtnK7V30iFnD2V935GHbG2vbJk= ssh-ed25519 ${ED25519_B64}`,
      `|1|c2hvcnQ=|bGtnK7V30iFnD2V935GHbG2vbJk= ssh-ed25519 ${ED25519_B64}`,
      `|1|1CgJFc1I+8xaO3ZkZJHuz4p6uUA= ssh-ed25519 ${ED25519_B64}`,
      "host 1024 35 12345678901234567890",
    ];
    const good = `good ssh-ed25519 ${ED25519_B64}`;
    const { entries, warnings } = parseKnownHostsWithWarnings([...malformed, good].join("\n"));
    expect(entries.map((entry) => entry.line)).toEqual([malformed.length + 1]);
    expect(warnings.map((warning) => warning.line)).toEqual(malformed.map((_, i) => i + 1));
    for (const warning of warnings) expect(warning.message).not.toBe("");
  });

  it("returns nothing for empty input", () => {
    expect(parseKnownHosts("")).toEqual([]);
    expect(parseKnownHosts("\n\n")).toEqual([]);
  });
});

describe("checkHostKey", () => {
  const key = newEd25519Blob();
  const otherKey = newEd25519Blob();

  it("matches a plain host name", () => {
    expect(check([line("example.com", key)], "example.com", 22, key)).toEqual({ status: "match" });
  });

  it("is unknown when no line names the host", () => {
    expect(check([line("other.com", key)], "example.com", 22, key)).toEqual({ status: "unknown" });
    expect(check([], "example.com", 22, key)).toEqual({ status: "unknown" });
  });

  it("compares host names case-insensitively", () => {
    expect(check([line("Example.COM", key)], "EXAMPLE.com", 22, key)).toEqual({ status: "match" });
  });

  it("uses [host]:port for non-standard ports", () => {
    const lines = [line("[example.com]:2222", key)];
    expect(check(lines, "example.com", 2222, key)).toEqual({ status: "match" });
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "unknown" });
    expect(check(lines, "example.com", 2223, key)).toEqual({ status: "unknown" });
  });

  it("treats [host]:22 as a different name from host", () => {
    expect(check([line("[example.com]:22", key)], "example.com", 22, key)).toEqual({ status: "unknown" });
  });

  it("like ssh, accepts a port-less entry when [host]:port is not known at all", () => {
    expect(check([line("example.com", key)], "example.com", 2222, key)).toEqual({ status: "match" });
    expect(check([line("example.com", otherKey)], "example.com", 2222, key)).toEqual({ status: "unknown" });
    expect(check([line("example.com", key, "@revoked")], "example.com", 2222, key)).toEqual({
      status: "revoked",
    });
    // A known [host]:port key takes precedence over the port-less entry.
    const lines = [line("example.com", key), line("[example.com]:2222", otherKey)];
    expect(check(lines, "example.com", 2222, key)).toMatchObject({ status: "changed" });
  });

  it("matches any name of a comma-separated list", () => {
    const lines = [line("web1,web1.example.com,10.0.0.5,[10.0.0.5]:2222", key)];
    expect(check(lines, "web1", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "web1.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "10.0.0.5", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "10.0.0.5", 2222, key)).toEqual({ status: "match" });
    expect(check(lines, "web2", 22, key)).toEqual({ status: "unknown" });
  });

  it("supports * and ? wildcards, anchored at both ends", () => {
    const star = [line("*.example.com", key)];
    expect(check(star, "web1.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(star, "a.b.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(star, "example.com", 22, key)).toEqual({ status: "unknown" });
    expect(check(star, "web1.example.com.evil.org", 22, key)).toEqual({ status: "unknown" });

    const question = [line("web?.example.com", key)];
    expect(check(question, "web7.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(question, "web.example.com", 22, key)).toEqual({ status: "unknown" });
    expect(check(question, "web10.example.com", 22, key)).toEqual({ status: "unknown" });

    const ports = [line("[10.0.0.*]:*", key)];
    expect(check(ports, "10.0.0.9", 2200, key)).toEqual({ status: "match" });
    expect(check(ports, "10.0.0.9", 22, key)).toEqual({ status: "unknown" });

    expect(check([line("*", key)], "anything", 22, key)).toEqual({ status: "match" });
  });

  it("lets a negated pattern exclude the whole line", () => {
    const lines = [line("*.example.com,!bastion.example.com", key)];
    expect(check(lines, "web1.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "bastion.example.com", 22, key)).toEqual({ status: "unknown" });
    // Order within the line does not matter.
    expect(check([line("!bastion.example.com,*.example.com", key)], "bastion.example.com", 22, key)).toEqual({
      status: "unknown",
    });
    // A negation alone never matches.
    expect(check([line("!bastion.example.com", key)], "web1.example.com", 22, key)).toEqual({
      status: "unknown",
    });
  });

  it("limits a negation to its own line", () => {
    const lines = [line("*,!bastion.example.com", otherKey), line("bastion.example.com", key)];
    expect(check(lines, "bastion.example.com", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "web1.example.com", 22, key)).toMatchObject({ status: "changed" });
  });

  it("matches hashed entries computed with HMAC-SHA1", () => {
    const salt = Buffer.alloc(20, 7);
    const lines = [
      line(hashedHost("example.com", salt), key),
      line(hashedHost("[example.com]:2222", salt), otherKey),
    ];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "match" });
    expect(check(lines, "example.com", 2222, otherKey)).toEqual({ status: "match" });
    expect(check(lines, "example.org", 22, key)).toEqual({ status: "unknown" });
    expect(check(lines, "example.com", 2222, key)).toMatchObject({ status: "changed" });
  });

  it("matches lines hashed by ssh-keygen -H", () => {
    const entries = parseKnownHosts(`${HASHED_PORT_22}\n${HASHED_PORT_2222}\n`);
    expect(entries).toHaveLength(2);
    expect(checkHostKey(entries, "deploy.example.com", 22, fixedEd25519)).toEqual({ status: "match" });
    expect(checkHostKey(entries, "DEPLOY.example.com", 2222, fixedEd25519)).toEqual({ status: "match" });
    // Port 2223 is not listed, so the port-less (port 22) line applies.
    expect(checkHostKey(entries, "deploy.example.com", 2223, fixedEd25519)).toEqual({ status: "match" });
    const portOnly = parseKnownHosts(HASHED_PORT_2222);
    expect(checkHostKey(portOnly, "deploy.example.com", 22, fixedEd25519)).toEqual({ status: "unknown" });
    expect(checkHostKey(portOnly, "deploy.example.com", 2223, fixedEd25519)).toEqual({ status: "unknown" });
    expect(checkHostKey(entries, "deploy.example.org", 22, fixedEd25519)).toEqual({ status: "unknown" });
    expect(checkHostKey(entries, "deploy.example.com", 22, key)).toEqual({
      status: "changed",
      expected: [{ type: "ssh-ed25519", fingerprint: ED25519_FP, line: 1 }],
    });
  });

  it("reports a changed key of the same type with the expected fingerprints", () => {
    const lines = [
      "# header",
      line("example.com", otherKey),
      line("example.com", fixedEcdsa),
      line("*.com", fixedEd25519),
    ];
    expect(check(lines, "example.com", 22, key)).toEqual({
      status: "changed",
      expected: [
        { type: "ssh-ed25519", fingerprint: fingerprintSha256(otherKey), line: 2 },
        { type: "ssh-ed25519", fingerprint: ED25519_FP, line: 4 },
      ],
    });
  });

  it("prefers a matching line over other lines with different keys", () => {
    const lines = [line("example.com", otherKey), line("example.com", key)];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "match" });
  });

  it("treats a host known only with other key types as unknown", () => {
    const lines = [line("example.com", fixedEcdsa)];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "unknown" });
    expect(knownHostKeyTypes(parseKnownHosts(lines.join("\n")), "example.com", 22)).toEqual([
      "ecdsa-sha2-nistp256",
    ]);
  });

  it("reports a revoked key even when a line also trusts it", () => {
    const lines = [line("example.com", key), line("*", key, "@revoked")];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "revoked" });
    expect(check([line("*", key, "@revoked")], "example.com", 22, key)).toEqual({ status: "revoked" });
    // Revocation of another key does not affect this one.
    expect(
      check([line("example.com", key), line("*", otherKey, "@revoked")], "example.com", 22, key),
    ).toEqual({
      status: "match",
    });
  });

  it("applies a revocation only to the hosts it names, as ssh does", () => {
    const lines = [line("example.com", key), line("other.com", key, "@revoked")];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "match" });
  });

  it("ignores @cert-authority lines for plain keys", () => {
    expect(check([line("example.com", key, "@cert-authority")], "example.com", 22, key)).toEqual({
      status: "unknown",
    });
    expect(check([line("example.com", otherKey, "@cert-authority")], "example.com", 22, key)).toEqual({
      status: "unknown",
    });
  });

  it("still checks valid lines when others are malformed", () => {
    const lines = ["garbage", "example.com ssh-ed25519 !!!", line("example.com", key)];
    expect(check(lines, "example.com", 22, key)).toEqual({ status: "match" });
  });

  it("does not throw on a malformed key blob", () => {
    expect(check([line("example.com", key)], "example.com", 22, Buffer.from("xx"))).toEqual({
      status: "unknown",
    });
  });
});

describe("knownHostKeyTypes", () => {
  it("lists distinct plain key types for the host in file order", () => {
    const key = newEd25519Blob();
    const entries = parseKnownHosts(
      [
        line("example.com", fixedEcdsa),
        line("example.com", key),
        line("*.com", fixedEd25519),
        line("example.com", Buffer.from(RSA_B64, "base64"), "@revoked"),
        line("other.com", Buffer.from(RSA_B64, "base64")),
      ].join("\n"),
    );
    expect(knownHostKeyTypes(entries, "example.com", 22)).toEqual(["ecdsa-sha2-nistp256", "ssh-ed25519"]);
    expect(knownHostKeyTypes(entries, "example.com", 2222)).toEqual([]);
  });
});

describe("formatKnownHostsLine", () => {
  const key = newEd25519Blob();

  it("writes a plain line", () => {
    expect(formatKnownHostsLine("example.com", 22, key)).toBe(
      `example.com ssh-ed25519 ${key.toString("base64")}`,
    );
    expect(formatKnownHostsLine("Example.com", 2222, key)).toBe(
      `[example.com]:2222 ssh-ed25519 ${key.toString("base64")}`,
    );
  });

  it("reproduces ssh-keygen -H output for a given salt", () => {
    const salt22 = Buffer.from("1CgJFc1I+8xaO3ZkZJHuz4p6uUA=", "base64");
    const salt2222 = Buffer.from("hD6CMTrdc72KvxnavzUOmeRR2+o=", "base64");
    expect(formatKnownHostsLine("deploy.example.com", 22, fixedEd25519, { hash: true, salt: salt22 })).toBe(
      HASHED_PORT_22,
    );
    expect(
      formatKnownHostsLine("deploy.example.com", 2222, fixedEd25519, { hash: true, salt: salt2222 }),
    ).toBe(HASHED_PORT_2222);
  });

  it("hashes with a fresh 20-byte salt by default", () => {
    const first = formatKnownHostsLine("example.com", 2222, key, { hash: true });
    const second = formatKnownHostsLine("example.com", 2222, key, { hash: true });
    expect(first).not.toBe(second);
    const [entry] = parseKnownHosts(first);
    expect(entry?.hosts.kind === "hashed" && entry.hosts.salt.length).toBe(20);
    expect(first).not.toContain("example.com");
  });

  it("round-trips through parse and check", () => {
    for (const hash of [false, true]) {
      for (const port of [22, 2222]) {
        const text = `# existing\n${formatKnownHostsLine("Web1.example.com", port, key, { hash })}\n`;
        const entries = parseKnownHosts(text);
        expect(checkHostKey(entries, "web1.example.com", port, key)).toEqual({ status: "match" });
        expect(checkHostKey(entries, "web1.example.com", port, newEd25519Blob())).toMatchObject({
          status: "changed",
        });
      }
    }
  });

  it("rejects bad salts and host names", () => {
    expect(() =>
      formatKnownHostsLine("example.com", 22, key, { hash: true, salt: Buffer.alloc(16) }),
    ).toThrow(RangeError);
    expect(() => formatKnownHostsLine("bad host", 22, key)).toThrow(/bad host/);
    expect(() => formatKnownHostsLine("a,b", 22, key)).toThrow();
    expect(() => formatKnownHostsLine("", 22, key)).toThrow();
  });
});

describe("appendKnownHost", () => {
  it("adds the newline a hand-edited file lacks before appending: both hosts stay known", () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-known-hosts-")), "known_hosts");
    const old = newEd25519Blob();
    const added = newEd25519Blob();
    writeFileSync(file, `# by hand\n${line("old.example.com", old)}`);
    appendKnownHost(file, "new.example.com", 22, added);
    const entries = readKnownHosts(file);
    expect(checkHostKey(entries, "old.example.com", 22, old)).toEqual({ status: "match" });
    expect(checkHostKey(entries, "new.example.com", 22, added)).toEqual({ status: "match" });
    expect(readFileSync(file, "utf8").endsWith("\n")).toBe(true);
    // A file that ends with its newline gets no blank line.
    appendKnownHost(file, "third.example.com", 2222, newEd25519Blob());
    expect(readFileSync(file, "utf8")).not.toContain("\n\n");
  });
});
