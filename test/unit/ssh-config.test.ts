import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ServerConfig } from "../../src/config/load.js";
import { resolveTarget } from "../../src/ssh/connect.js";
import { hostKeyAlgorithms } from "../../src/ssh/host-keys.js";
import { globFiles, resolveSshConfigHost, sameAsNexus } from "../../src/ssh/ssh-config.js";

const context = { home: "/home/dev", localUser: "dev" };

const TEXT = `
# a comment
Host web1 web-*
  HostName %h.internal.example.com
  Port 2200
  IdentityFile ~/.ssh/web_%r
  IdentityFile %d/.ssh/second

Host !web-legacy web-*
  User deployer

Host db
  Hostname=10.0.0.9
  USER dbadmin
  identityfile "/keys/db key"

Match exec "touch /tmp/pwned"
  User pwned

Host *
  User fallback
  Port 22
  IdentityFile ~/.ssh/id_all
`;

describe("resolveSshConfigHost (~/.ssh/config, parsed by the ssh-config library)", () => {
  it("applies the first value found for each field, across matching Host blocks, like ssh", () => {
    expect(resolveSshConfigHost(TEXT, "web-a", context)).toEqual({
      hostName: "web-a.internal.example.com",
      user: "deployer",
      port: 2200,
      identityFiles: ["/home/dev/.ssh/web_deployer", "/home/dev/.ssh/second", "/home/dev/.ssh/id_all"],
      unhonoured: [],
    });
  });

  it("honours negated patterns", () => {
    expect(resolveSshConfigHost(TEXT, "web-legacy", context)).toMatchObject({ user: "fallback", port: 2200 });
  });

  it("takes directive names in any case, `=` separators and quoted values", () => {
    expect(resolveSshConfigHost(TEXT, "db", context)).toEqual({
      hostName: "10.0.0.9",
      user: "dbadmin",
      port: 22,
      identityFiles: ["/keys/db key", "/home/dev/.ssh/id_all"],
      unhonoured: [],
    });
  });

  it("matches patterns against the host as given, case and all, and lowercases HostName, as ssh -G does", () => {
    expect(resolveSshConfigHost(TEXT, "WEB1", context).hostName).toBeUndefined();
    expect(resolveSshConfigHost("HOST Web1\n  HostName Web1.Example\n", "Web1", context).hostName).toBe(
      "web1.example",
    );
  });

  it("never runs `Match exec` commands", () => {
    expect(resolveSshConfigHost(TEXT, "other", context).user).toBe("fallback");
  });

  it("an empty file, or a host no block names, gives nothing", () => {
    expect(resolveSshConfigHost("", "web1", context)).toEqual({ identityFiles: [], unhonoured: [] });
    expect(resolveSshConfigHost("Host a\n  User x\n", "b", context)).toEqual({
      identityFiles: [],
      unhonoured: [],
    });
  });

  it("ignores IdentityFile none and a port that is not a number", () => {
    expect(resolveSshConfigHost("Host a\n  IdentityFile none\n  Port ssh\n", "a", context)).toEqual({
      identityFiles: [],
      unhonoured: [],
    });
  });
});

describe("resolveTarget: the nexus config wins over ~/.ssh/config", () => {
  const server = (overrides: Partial<ServerConfig>): ServerConfig => ({
    name: "web",
    host: "web1",
    port: 22,
    user: "me",
    deployPath: "~/apps/x",
    upstream: "web1:3000",
    env: {},
    explicit: { port: false, user: false },
    ...overrides,
  });

  it("fills HostName, Port, User and IdentityFile from the alias when the nexus config does not set them", () => {
    const target = resolveTarget(server({}), TEXT);
    expect(target).toMatchObject({ host: "web1.internal.example.com", port: 2200, user: "fallback" });
    expect(target.identityFiles[0]).toMatch(/\/\.ssh\/web_fallback$/);
  });

  it("keeps a port or user set in the nexus config", () => {
    const target = resolveTarget(
      server({ port: 2222, user: "ops", explicit: { port: true, user: true } }),
      TEXT,
    );
    expect(target).toMatchObject({ host: "web1.internal.example.com", port: 2222, user: "ops" });
  });

  it("with no ssh config, connects to the configured host as is", () => {
    expect(resolveTarget(server({}), "")).toEqual({
      host: "web1",
      port: 22,
      user: "me",
      identityFiles: [],
      hops: [],
      unhonoured: [],
    });
  });
});

describe("hostKeyAlgorithms: a known host negotiates only the key types known for it", () => {
  it("offers any algorithm for an unknown host", () => {
    expect(hostKeyAlgorithms([])).toBeUndefined();
  });

  it("maps ssh-rsa to the SHA-2 signatures first, then ssh-rsa", () => {
    expect(hostKeyAlgorithms(["ssh-ed25519", "ssh-rsa"])).toEqual([
      "ssh-ed25519",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
  });

  it("is empty when no known type is one nexus can verify", () => {
    expect(hostKeyAlgorithms(["sk-ssh-ed25519@openssh.com"])).toEqual([]);
  });
});

describe("ProxyJump, Include and keywords nexus does not honour", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-sshcfg-"));
  const home = path.join(dir, "home");
  mkdirSync(path.join(home, ".ssh", "config.d"), { recursive: true });
  writeFileSync(
    path.join(home, ".ssh", "config.d", "20-web"),
    "Host web\n  HostName 10.0.0.20\n  Port 2220\n",
  );
  writeFileSync(path.join(home, ".ssh", "config.d", "10-db"), "Host db\n  HostName 10.0.0.10\n  User dba\n");
  writeFileSync(path.join(home, ".ssh", "config.d", ".hidden"), "Host web\n  HostName hidden.example\n");
  writeFileSync(path.join(dir, "abs.conf"), "Host abs\n  HostName abs.example\n");
  writeFileSync(path.join(dir, "only-for-x.conf"), "Host y\n  HostName from-x-block.example\n");
  const ctx = { home, localUser: "dev" };

  it("follows Include as ssh does: globs in lexical order, relative to ~/.ssh, ~ and absolute paths", () => {
    const text = `Include config.d/* ~/.ssh/none-such ${dir}/abs.conf\nHost *\n  User everyone\n`;
    expect(resolveSshConfigHost(text, "web", ctx)).toMatchObject({
      hostName: "10.0.0.20",
      port: 2220,
      user: "everyone",
    });
    expect(resolveSshConfigHost(text, "db", ctx)).toMatchObject({ hostName: "10.0.0.10", user: "dba" });
    expect(resolveSshConfigHost(text, "abs", ctx).hostName).toBe("abs.example");
  });

  it("an Include inside a block reads nothing for a host the block does not match; after it, the block goes on", () => {
    const text = `Host x\n  Include ${dir}/only-for-x.conf\n  User xuser\nHost *\n  User other\n`;
    expect(resolveSshConfigHost(text, "y", ctx).hostName).toBeUndefined();
    expect(resolveSshConfigHost(text, "x", ctx).user).toBe("xuser");
    expect(resolveSshConfigHost(text, "y", ctx).user).toBe("other");
  });

  it("reads ProxyJump as written, first value wins, and names the keywords nexus does not honour", () => {
    const text =
      "Host app\n  ProxyJump ops@bastion:2222,inner\n  ForwardAgent yes\nHost *\n  ProxyJump other\n  ServerAliveInterval 30\n  IdentityFile ~/.ssh/k\n";
    const app = resolveSshConfigHost(text, "app", ctx);
    expect(app.proxyJump).toBe("ops@bastion:2222,inner");
    expect(app.unhonoured).toEqual([
      { keyword: "ForwardAgent", value: "yes" },
      { keyword: "ServerAliveInterval", value: "30" },
    ]);
    expect(resolveSshConfigHost(text, "else", ctx).proxyJump).toBe("other");
  });
});

describe("settings nexus does not honour", () => {
  const nexus = { strictHostKeys: true, knownHosts: "/srv/kh", usesAgent: false };
  const same = (a: string, b: string) => a === b;

  it("are no news when they ask for what nexus does anyway", () => {
    expect(sameAsNexus({ keyword: "StrictHostKeyChecking", value: "yes" }, nexus, same)).toBe(true);
    expect(sameAsNexus({ keyword: "IdentitiesOnly", value: "yes" }, nexus, same)).toBe(true);
    expect(sameAsNexus({ keyword: "UserKnownHostsFile", value: "/srv/kh" }, nexus, same)).toBe(true);
  });

  it("are news otherwise: other values, accept-new, an agent in use, another or a second file", () => {
    expect(sameAsNexus({ keyword: "StrictHostKeyChecking", value: "no" }, nexus, same)).toBe(false);
    expect(
      sameAsNexus(
        { keyword: "StrictHostKeyChecking", value: "yes" },
        { ...nexus, strictHostKeys: false },
        same,
      ),
    ).toBe(false);
    expect(
      sameAsNexus({ keyword: "IdentitiesOnly", value: "yes" }, { ...nexus, usesAgent: true }, same),
    ).toBe(false);
    expect(sameAsNexus({ keyword: "UserKnownHostsFile", value: "/srv/other" }, nexus, same)).toBe(false);
    expect(sameAsNexus({ keyword: "UserKnownHostsFile", value: "/srv/kh /srv/kh2" }, nexus, same)).toBe(
      false,
    );
    expect(sameAsNexus({ keyword: "ForwardAgent", value: "yes" }, nexus, same)).toBe(false);
  });
});

describe("globFiles", () => {
  it("matches *, ? and [...] per path segment, sorted, dotfiles only when asked", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-glob-"));
    for (const name of ["a1.conf", "a2.conf", "b.conf", ".a3.conf", "ab.txt"])
      writeFileSync(path.join(dir, name), "");
    mkdirSync(path.join(dir, "sub"));
    expect(globFiles(`${dir}/a?.conf`).map((f) => path.basename(f))).toEqual(["a1.conf", "a2.conf"]);
    expect(globFiles(`${dir}/[ab]*.conf`).map((f) => path.basename(f))).toEqual([
      "a1.conf",
      "a2.conf",
      "b.conf",
    ]);
    expect(globFiles(`${dir}/.a*`).map((f) => path.basename(f))).toEqual([".a3.conf"]);
    expect(globFiles(`${dir}/*`)).not.toContain(path.join(dir, "sub"));
    expect(globFiles(`${dir}/nothing*`)).toEqual([]);
  });
});
