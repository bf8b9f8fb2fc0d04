import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentRelease, nexus, uniqueRelease, writeConfig } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

const SERVERS = ["nexus-alpha", "nexus-beta", "nexus-gamma"];
const tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-ssh-sec-"));
/** An empty home: no ~/.ssh/id_* default key can stand in for the method under test. */
const emptyHome = mkdtempSync(path.join(os.tmpdir(), "nexus-ssh-home-"));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  rmSync(emptyHome, { recursive: true, force: true });
});
const NO_AMBIENT_AUTH = { HOME: emptyHome, SSH_AUTH_SOCK: "", NEXUS_SSH_KEY: "", NEXUS_SSH_PASSPHRASE: "" };

function hostPattern(name: string): string {
  const host = sandboxInfo().hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no host ${name}`);
  return host.sshPort === 22 ? host.address : `[${host.address}]:${host.sshPort}`;
}

/** The host's real public key, "ssh-ed25519 AAAA…". */
function realKey(name: string): string {
  const file = path.join(sandboxInfo().dir, "hosts", name, "ssh_host_ed25519_key.pub");
  return readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

/** The fingerprint as OpenSSH prints it. */
function realFingerprint(name: string): string {
  const file = path.join(sandboxInfo().dir, "hosts", name, "ssh_host_ed25519_key.pub");
  return execFileSync("ssh-keygen", ["-lf", file], { encoding: "utf8" }).split(" ")[1] as string;
}

let counter = 0;
/** A fresh key pair that no sandbox host has: "ssh-ed25519 AAAA…" (or another type). */
function otherKey(type = "ed25519"): string {
  const file = path.join(tmp, `other-${counter++}`);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "", "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

function knownHostsFile(lines: string[]): string {
  const file = path.join(tmp, `known_hosts-${counter++}`);
  writeFileSync(file, lines.length > 0 ? `${lines.join("\n")}\n` : "");
  return file;
}

function realLines(names = SERVERS): string[] {
  return names.map((name) => `${hostPattern(name)} ${realKey(name)}`);
}

function configWith(knownHosts: string, overrides: Record<string, unknown> = {}): string {
  return writeConfig({ ssh: { knownHosts, ...((overrides.ssh as object) ?? {}) }, ...withoutSsh(overrides) });
}

function withoutSsh(overrides: Record<string, unknown>): Record<string, unknown> {
  const { ssh: _ssh, ...rest } = overrides;
  return rest;
}

/** `writeConfig` with no ssh.privateKey: the key must come from the agent, the env or ~/.ssh/config. */
function configWithoutKey(extra: Record<string, unknown> = {}): string {
  const file = writeConfig(extra);
  const data = JSON.parse(readFileSync(file, "utf8"));
  delete data.ssh.privateKey;
  writeFileSync(file, JSON.stringify(data, null, 2));
  return file;
}

/** Lines of the sandbox client's private key, none of which may ever be printed. */
function keyLines(): string[] {
  return readFileSync(sandboxInfo().clientKey, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("-----"));
}

function expectNoKeyMaterial(output: string): void {
  for (const line of keyLines()) expect(output).not.toContain(line);
}

describe("host keys are verified against known_hosts", () => {
  it("an unknown key stops the command with the fingerprint as OpenSSH prints it, and how to trust it", async () => {
    const file = knownHostsFile([]);
    const config = configWith(file);
    const run = await nexus(["-c", config, "status"]);
    expect(run.exitCode, run.all).toBe(1);
    for (const name of SERVERS) {
      expect(run.stderr).toContain(
        `unknown host key for ${hostPattern(name)}: ssh-ed25519 ${realFingerprint(name)}`,
      );
      // With the -c it was run with: copied, the hint trusts the key in this config's known_hosts.
      expect(run.stderr).toContain(`\`nexus -c ${config} trust ${name}\``);
    }
    expect(readFileSync(file, "utf8")).toBe("");
  });

  it("a changed key is refused as a possible man-in-the-middle, even with --accept-new, before any command runs", async () => {
    // The sandbox hosts present their real keys; known_hosts holds other keys of the same type.
    // (ssh2 would take a Promise from the verifier as "accept": this proves a refusal is a refusal.)
    const lines = SERVERS.map((name) => `${hostPattern(name)} ${otherKey()}`);
    const file = knownHostsFile(lines);
    for (const flags of [[], ["--accept-new"]]) {
      const run = await nexus(["-c", configWith(file), ...flags, "--verbose", "status"]);
      expect(run.exitCode, run.all).toBe(1);
      for (const name of SERVERS) {
        expect(run.stderr).toContain(
          `HOST KEY CHANGED for ${hostPattern(name)}: possible man-in-the-middle attack.`,
        );
        expect(run.stderr).toContain(`offered: ssh-ed25519 ${realFingerprint(name)}`);
      }
      // --verbose shows every remote command: there is none.
      expect(run.all).not.toMatch(/\$ /);
      expect(readFileSync(file, "utf8")).toBe(`${lines.join("\n")}\n`);
    }
  });

  it("a key marked @revoked is refused", async () => {
    const file = knownHostsFile([
      ...realLines(),
      `@revoked ${hostPattern("nexus-beta")} ${realKey("nexus-beta")}`,
    ]);
    const run = await nexus(["-c", configWith(file), "status"]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toContain(`the host key of ${hostPattern("nexus-beta")}`);
    expect(run.stderr).toContain("is marked @revoked");
  });

  it("accept-new learns unknown keys, then enforces them", async () => {
    const file = knownHostsFile([]);
    const learn = await nexus(["-c", configWith(file), "--accept-new", "status"]);
    expect(learn.stderr).not.toMatch(/host key for|HOST KEY/);
    for (const name of SERVERS) {
      expect(learn.stderr).toContain(`${name}: learned host key ${realFingerprint(name)}`);
    }
    const learned = readFileSync(file, "utf8").trim().split("\n").sort();
    expect(learned).toEqual(realLines().sort());

    // Connecting again changes nothing; the config setting works like the flag.
    const again = await nexus(["-c", configWith(file, { ssh: { hostKeys: "accept-new" } }), "status"]);
    expect(again.stderr).not.toMatch(/learned host key|HOST KEY/);
    expect(readFileSync(file, "utf8").trim().split("\n").sort()).toEqual(learned);

    // Now alpha presents a key other than the learned one: refused, accept-new or not.
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace(
        `${hostPattern("nexus-alpha")} ${realKey("nexus-alpha")}`,
        `${hostPattern("nexus-alpha")} ${otherKey()}`,
      ),
    );
    const changed = await nexus(["-c", configWith(file, { ssh: { hostKeys: "accept-new" } }), "status"]);
    expect(changed.exitCode).toBe(1);
    expect(changed.stderr).toContain(`HOST KEY CHANGED for ${hostPattern("nexus-alpha")}`);
  });

  it("accept-new does not learn a key of another type for a host already known (no downgrade to an unknown type)", async () => {
    const file = knownHostsFile([`${hostPattern("nexus-alpha")} ${otherKey("ecdsa")}`]);
    const run = await nexus(["-c", configWith(file), "--accept-new", "status"]);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain(
      "offers none of the key types known for it in known_hosts (ecdsa-sha2-nistp256)",
    );
    expect(readFileSync(file, "utf8")).not.toContain(realKey("nexus-alpha"));
  });

  it("hashed known_hosts entries (ssh-keygen -H) match, and a hashed entry with another key is a changed key", async () => {
    const file = knownHostsFile(realLines());
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    const hashed = readFileSync(file, "utf8");
    expect(
      hashed
        .trim()
        .split("\n")
        .every((line) => line.startsWith("|1|")),
    ).toBe(true);
    const run = await nexus(["-c", configWith(file), "status"]);
    expect(run.stderr).not.toMatch(/host key for|HOST KEY/);
    expect(run.stdout).toMatch(/nexus-alpha/);

    const wrong = knownHostsFile([
      `${hostPattern("nexus-beta")} ${otherKey()}`,
      ...realLines(["nexus-alpha", "nexus-gamma"]),
    ]);
    execFileSync("ssh-keygen", ["-H", "-f", wrong], { stdio: "ignore" });
    const refused = await nexus(["-c", configWith(wrong), "status"]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`HOST KEY CHANGED for ${hostPattern("nexus-beta")}`);
  });
});

describe("nexus trust <server>", () => {
  it("shows the fingerprint and records the key with --yes; a second run says it is already trusted", async () => {
    const file = knownHostsFile([]);
    const config = configWith(file);
    const run = await nexus(["-c", config, "trust", "nexus-alpha", "--yes"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain(
      `nexus-alpha (${hostPattern("nexus-alpha")}) host key: ssh-ed25519 ${realFingerprint("nexus-alpha")}`,
    );
    expect(readFileSync(file, "utf8")).toBe(`${realLines(["nexus-alpha"])[0]}\n`);

    const again = await nexus(["-c", config, "trust", "nexus-alpha", "--yes"]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain("already trusted");
  });

  it("--json: stdout holds one result line (added, then already), the human lines go to stderr", async () => {
    const file = knownHostsFile([]);
    const config = configWith(file);
    for (const trusted of ["added", "already"]) {
      const run = await nexus(["--json", "-c", config, "trust", "nexus-gamma", "--yes"]);
      expect(run.exitCode, run.all).toBe(0);
      const lines = run.stdout.split("\n").filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] as string)).toMatchObject({
        type: "result",
        command: "trust",
        server: "nexus-gamma",
        host: hostPattern("nexus-gamma"),
        keyType: "ssh-ed25519",
        fingerprint: realFingerprint("nexus-gamma"),
        trusted,
      });
      expect(run.stderr).toContain(realFingerprint("nexus-gamma"));
    }
  });

  it("asks for confirmation: without a terminal and without --yes, nothing is recorded", async () => {
    const file = knownHostsFile([]);
    const run = await nexus(["-c", configWith(file), "trust", "nexus-beta"]);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain(realFingerprint("nexus-beta"));
    expect(run.stderr).toContain("not a terminal");
    expect(readFileSync(file, "utf8")).toBe("");
  });

  it("writes a hashed line when the file already uses hashed entries", async () => {
    const file = knownHostsFile(realLines(["nexus-beta"]));
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    const run = await nexus(["-c", configWith(file), "trust", "nexus-alpha", "--yes"]);
    expect(run.exitCode, run.all).toBe(0);
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^\|1\|[^ ]+ ssh-ed25519 /);
    // ...and the hashed line is one nexus (and ssh) accepts.
    const status = await nexus(["-c", configWith(file), "status"]);
    expect(status.stderr).not.toContain(`unknown host key for ${hostPattern("nexus-alpha")}`);
  });

  it("refuses a changed key unless --replace, which swaps the old line for the new key", async () => {
    const old = `${hostPattern("nexus-gamma")} ${otherKey()}`;
    const file = knownHostsFile([...realLines(["nexus-alpha"]), old]);
    const config = configWith(file);
    const refused = await nexus(["-c", config, "trust", "nexus-gamma", "--yes"]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`HOST KEY CHANGED for ${hostPattern("nexus-gamma")}`);
    expect(refused.stderr).toContain("--replace");
    expect(readFileSync(file, "utf8")).toContain(old);

    const replaced = await nexus(["-c", config, "trust", "nexus-gamma", "--replace", "--yes"]);
    expect(replaced.exitCode, replaced.all).toBe(0);
    expect(readFileSync(file, "utf8").trim().split("\n")).toEqual(realLines(["nexus-alpha", "nexus-gamma"]));
  });
});

describe("authentication as ssh does it; key material is never printed", () => {
  let agentPid: number | undefined;
  const agentSocket = path.join(tmp, "agent.sock");

  beforeAll(async () => {
    const started = await execa("ssh-agent", ["-s", "-a", agentSocket]);
    agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1]);
    await execa("ssh-add", [sandboxInfo().clientKey], { env: { SSH_AUTH_SOCK: agentSocket } });
  });

  afterAll(() => {
    if (agentPid) process.kill(agentPid);
  });

  it("deploys with the key held by the agent (SSH_AUTH_SOCK), no key file, no key in the env", async () => {
    const release = uniqueRelease("agent");
    const run = await nexus(["-c", configWithoutKey(), "--verbose", "deploy", "--release-id", release], {
      env: { ...NO_AMBIENT_AUTH, SSH_AUTH_SOCK: agentSocket },
    });
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
    expectNoKeyMaterial(run.all);
  });

  it("deploys with the key in $NEXUS_SSH_KEY (a CI secret), no key file, no agent", async () => {
    const release = uniqueRelease("envkey");
    const key = readFileSync(sandboxInfo().clientKey, "utf8");
    const run = await nexus(["-c", configWithoutKey(), "--verbose", "deploy", "--release-id", release], {
      env: { ...NO_AMBIENT_AUTH, NEXUS_SSH_KEY: key.trimEnd() },
    });
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
    expectNoKeyMaterial(run.all);
  });

  it("without any usable key: one clear authentication error per host", async () => {
    const run = await nexus(["-c", configWithoutKey(), "--verbose", "status"], { env: NO_AMBIENT_AUTH });
    expect(run.exitCode).toBe(1);
    for (const name of SERVERS) {
      expect(run.stderr).toMatch(
        new RegExp(
          `${name}: (connect FAILED: )?authentication failed for \\S+@${hostPattern(name).replace(/[[\]]/g, "")}`,
        ),
      );
    }
  });

  it("a key that does not parse is an auth error naming its source, not its content", async () => {
    const garbage =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END OPENSSH PRIVATE KEY-----";
    const run = await nexus(["-c", configWithoutKey(), "--verbose", "status"], {
      env: { ...NO_AMBIENT_AUTH, NEXUS_SSH_KEY: garbage },
    });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain("cannot use the key in $NEXUS_SSH_KEY");
    expect(run.all).not.toContain("bm90IGEga2V5IGF0IGFsbA==");
  });

  it("a server named by a ~/.ssh/config Host alias gets its HostName, Port, User and IdentityFile", async () => {
    const info = sandboxInfo();
    const alpha = info.hosts[0]!;
    const sshConfig = path.join(tmp, "ssh_config");
    writeFileSync(
      sshConfig,
      [
        "Host app-one",
        `  HostName ${alpha.address}`,
        `  Port ${alpha.sshPort}`,
        `  User ${info.user}`,
        `  IdentityFile ${info.clientKey}`,
        "Host *",
        "  User nobody-by-default",
        "",
      ].join("\n"),
    );
    const file = configWithoutKey({
      ssh: { configFile: sshConfig, user: undefined },
      balancer: { host: "nexus-alpha" },
    });
    const data = JSON.parse(readFileSync(file, "utf8"));
    data.servers = [{ name: "nexus-alpha", host: "app-one", upstream: alpha.appAddress }];
    writeFileSync(file, JSON.stringify(data, null, 2));

    const run = await nexus(["-c", file, "--verbose", "status"], { env: NO_AMBIENT_AUTH });
    expect(run.stderr).not.toMatch(/authentication failed|cannot connect|host key/i);
    expect(run.stdout).toMatch(/nexus-alpha\s+/);
    expectNoKeyMaterial(run.all);
  });
});
