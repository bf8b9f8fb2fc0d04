import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxDeployConfig } from "../../src/sandbox/deploy-config.js";
import { type SandboxInfo, sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { fixture, nexus, uniqueRelease } from "./helpers.js";
import { TEST_IP_PREFIX, TEST_SETUP_DIR } from "./sandbox-env.js";

// Its own one-host sandbox, apart from the shared one: a fresh server that accepts only the
// deploy user's password, the way a server looks before `nexus setup`.
const PREFIX = TEST_IP_PREFIX.replace(/^127\.0\./, "127.2.");
const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)("nexus setup on a server that only accepts a password", () => {
  let dir: string;
  let info: SandboxInfo | undefined;
  let config: string;
  let keyPath: string;
  let knownHosts: string;
  let password: string;

  beforeAll(async () => {
    dir = TEST_SETUP_DIR;
    await sandboxPurge(dir);
    // Two hosts: the capacity guard keeps one in rotation while the other restarts.
    info = await sandboxUp({ dir, ipPrefix: PREFIX, hosts: 2, passwordLogin: ["nexus-alpha", "nexus-beta"] });
    password = readFileSync(info.passwordFile as string, "utf8");
    keyPath = path.join(dir, "local", "keys", "id_deploy");
    knownHosts = path.join(dir, "local", "known_hosts");
    const data = sandboxDeployConfig(info, { appRoot: fixture("app") }) as Record<string, any>;
    data.ssh = { ...data.ssh, privateKey: keyPath, knownHosts };
    data.health = { interval: "150ms", deadline: "15s", passes: 3 };
    config = path.join(dir, "deploy.config.json");
    writeFileSync(config, JSON.stringify(data, null, 2));
  });

  afterAll(async () => {
    if (!info) return;
    // The state dir too (dir is a link to it, under /var/tmp).
    await sandboxPurge(dir);
  });

  it("the sandbox's key is refused there: the server really wants a password", async () => {
    const data = JSON.parse(readFileSync(config, "utf8"));
    data.ssh = { ...data.ssh, privateKey: info?.clientKey, knownHosts: path.join(dir, "other_known_hosts") };
    const other = path.join(dir, "sandbox-key.config.json");
    writeFileSync(other, JSON.stringify(data));
    const run = await nexus(["--accept-new", "-c", other, "status"]);
    expect(run.exitCode).not.toBe(0);
    expect(run.all).toMatch(/authentication failed/);
  });

  it("--dry-run shows the plan and changes nothing", async () => {
    const run = await nexus(["-c", config, "setup", "--dry-run"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toMatch(/would generate an ed25519 key pair/);
    expect(run.stdout).toMatch(/host key of .* is ssh-ed25519 SHA256:/);
    expect(run.stdout).toMatch(/would install the deploy key/);
    expect(run.stdout).toMatch(/would write .* if it is missing/);
    expect(existsSync(keyPath)).toBe(false);
    expect(existsSync(knownHosts)).toBe(false);
  });

  it("generates the key, records the host key, installs the key with the password, then checks", async () => {
    const run = await nexus(["-c", config, "setup", "--yes"], { env: { NEXUS_SSH_PASSWORD: password } });
    expect(run.exitCode, run.all).toBe(0);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${keyPath}.pub`, "utf8")).toMatch(/^ssh-ed25519 /);
    expect(readFileSync(knownHosts, "utf8")).toMatch(/ssh-ed25519/);
    expect(run.stdout).toMatch(/installed the deploy key .* \(logged in once with a password\)/);
    expect(run.stdout).toMatch(/deploy path .* ready/);
    expect(run.stdout).toMatch(/sudoers rule .*NOPASSWD: .*nginx/);
    expect(run.stdout).toMatch(/all checks passed/);
    expect(run.all).not.toContain(password);
  });

  it("is idempotent: a second run needs no password and changes nothing", async () => {
    const authorized = path.join(info?.hosts[0]?.home as string, ".ssh", "authorized_keys");
    const keys = readFileSync(authorized, "utf8");
    expect(keys.trim().split("\n")).toHaveLength(1);
    const run = await nexus(["-c", config, "setup"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toMatch(/key: .* exists/);
    expect(run.stdout).toMatch(/already trusted/);
    expect(run.stdout).toMatch(/logs in as nexus-deploy with the deploy key/);
    expect(readFileSync(authorized, "utf8")).toBe(keys);
  });

  it("a local balancer is looked at on this machine: an existing file is kept, and one holding the whole block is warned about", async () => {
    const file = path.join(dir, "local-upstream.conf");
    const original = "upstream nexus_app {\n    server 10.0.0.1:3000;\n}\n";
    writeFileSync(file, original);
    const data = JSON.parse(readFileSync(config, "utf8"));
    data.balancer = { ...data.balancer, host: "local", upstreamFile: file };
    const other = path.join(dir, "local-lb.config.json");
    writeFileSync(other, JSON.stringify(data));
    const run = await nexus(["-c", other, "setup", "--dry-run"]);
    expect(run.stdout).toMatch(/local \(balancer\): upstream file \S+local-upstream\.conf exists/);
    expect(run.stdout).toMatch(
      /local \(balancer\): WARNING: the upstream file holds the whole upstream block/,
    );
    expect(run.stdout).not.toContain("<user>");
    expect(readFileSync(file, "utf8")).toBe(original);
  });

  it("a new deploy key, with an accepted key in the agent: installs it through the agent, not taking the agent's login for it", async () => {
    const agentDir = mkdtempSync(path.join(os.tmpdir(), "nexus-agent-"));
    const sock = path.join(agentDir, "agent.sock");
    const pid = /SSH_AGENT_PID=(\d+)/.exec(
      execFileSync("ssh-agent", ["-a", sock], { encoding: "utf8" }),
    )?.[1];
    try {
      execFileSync("ssh-add", [keyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const data = JSON.parse(readFileSync(config, "utf8"));
      const second = path.join(dir, "local", "keys", "id_second");
      data.ssh = { ...data.ssh, privateKey: second };
      const other = path.join(dir, "second-key.config.json");
      writeFileSync(other, JSON.stringify(data));
      const run = await nexus(["-c", other, "setup", "--yes"], { env: { SSH_AUTH_SOCK: sock } });
      expect(run.exitCode, run.all).toBe(0);
      expect(run.stdout).toMatch(/installed the deploy key .* \(logged in once with the agent\)/);
      const authorized = path.join(info?.hosts[0]?.home as string, ".ssh", "authorized_keys");
      expect(readFileSync(authorized, "utf8")).toContain(readFileSync(`${second}.pub`, "utf8").trim());
    } finally {
      if (pid) process.kill(Number(pid));
      await rm(agentDir, { recursive: true, force: true });
    }
  });

  it("then `nexus deploy` works with the new key", async () => {
    const run = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("after-setup")]);
    expect(run.exitCode, run.all).toBe(0);
  });
});
