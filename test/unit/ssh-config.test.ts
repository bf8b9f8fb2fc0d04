import { describe, expect, it } from "vitest";
import type { ServerConfig } from "../../src/config/load.js";
import { resolveTarget } from "../../src/ssh/connect.js";
import { hostKeyAlgorithms } from "../../src/ssh/host-keys.js";
import { resolveSshConfigHost } from "../../src/ssh/ssh-config.js";

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
    });
  });

  it("matches the host case-insensitively, as ssh lowercases it", () => {
    expect(resolveSshConfigHost(TEXT, "WEB1", context).hostName).toBe("web1.internal.example.com");
  });

  it("never runs `Match exec` commands", () => {
    expect(resolveSshConfigHost(TEXT, "other", context).user).toBe("fallback");
  });

  it("an empty file, or a host no block names, gives nothing", () => {
    expect(resolveSshConfigHost("", "web1", context)).toEqual({ identityFiles: [] });
    expect(resolveSshConfigHost("Host a\n  User x\n", "b", context)).toEqual({ identityFiles: [] });
  });

  it("ignores IdentityFile none and a port that is not a number", () => {
    expect(resolveSshConfigHost("Host a\n  IdentityFile none\n  Port ssh\n", "a", context)).toEqual({
      identityFiles: [],
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
    expect(resolveTarget(server({}), "")).toEqual({ host: "web1", port: 22, user: "me", identityFiles: [] });
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
