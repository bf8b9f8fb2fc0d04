import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshBanner } from "../../src/sandbox/bastion.js";
import { sandboxBastionDeployConfig } from "../../src/sandbox/deploy-config.js";
import type { SandboxBastion, SandboxInfo } from "../../src/sandbox/index.js";
import { sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { APP_NAME, fixture, nexus, uniqueRelease } from "./helpers.js";
import { TEST_BASTION_DIR, TEST_BASTION_IP_PREFIX } from "./sandbox-env.js";

/**
 * Issue 27, jump hosts: a sandbox whose app hosts accept logins only from its bastion's address
 * (src/sandbox/bastion.ts), so that every command that works proves the jump was taken.
 */
describe("through a bastion", () => {
  let info: SandboxInfo & { bastion: SandboxBastion };

  beforeAll(async () => {
    await sandboxPurge(TEST_BASTION_DIR).catch(() => {});
    const up = await sandboxUp({ dir: TEST_BASTION_DIR, ipPrefix: TEST_BASTION_IP_PREFIX, bastion: true });
    if (!up.bastion) throw new Error("no bastion");
    info = { ...up, bastion: up.bastion };
  });

  afterAll(async () => {
    // The state dir too (the dir is a link to it, under /var/tmp).
    if (!process.env.NEXUS_KEEP_SANDBOX) await sandboxPurge(TEST_BASTION_DIR);
  });

  /** The sandbox's bastion deploy config, with the e2e suite's quick health settings; `edit` on top. */
  const config = (edit: (c: Record<string, unknown>) => void = () => {}): string => {
    const c = sandboxBastionDeployConfig(info, { appRoot: fixture("app"), appName: APP_NAME }) as Record<
      string,
      Record<string, unknown>
    >;
    c.pm2 = { env: { NODE_ENV: "production" } };
    c.balancer = { ...c.balancer, drainTimeout: "5s" };
    c.health = { interval: "150ms", deadline: "15s", passes: 3 };
    edit(c);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-bastion-")), "deploy.config.json");
    writeFileSync(file, JSON.stringify(c, null, 2));
    return file;
  };

  /** Logins each app host's sshd accepted, by the address they came from. */
  const loginsFrom = (address: string) =>
    info.hosts.map(
      (h) =>
        readFileSync(path.join(TEST_BASTION_DIR, "hosts", h.name, "sshd.log"), "utf8")
          .split("\n")
          .filter((line) => line.includes(`Accepted publickey for ${info.user} from ${address} `)).length,
    );

  const servedRelease = async (): Promise<string | undefined> => {
    const dispatcher = new Agent({ pipelining: 0 });
    try {
      const response = await request(`${info.lb.url}/`, { dispatcher, headersTimeout: 5000 });
      return ((await response.body.json()) as { release?: string }).release;
    } finally {
      await dispatcher.close();
    }
  };

  it("waits for the bastion through a bridge that accepts and closes at once (its far end not up yet)", async () => {
    // The CI run of 2026-12-07 hung in sandbox up: the entry bridge closed the probe's connection
    // without a byte and without an error, and the probe waited forever.
    const closing = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => closing.listen(0, "127.0.0.1", resolve));
    const { port } = closing.address() as { port: number };
    try {
      expect(await sshBanner("127.0.0.1", port)).toBe(false);
      expect(await sshBanner(info.bastion.address, info.bastion.sshPort)).toBe(true);
    } finally {
      closing.close();
    }
  });

  it("the app hosts refuse a direct login; nexus deploys through the bastion, every login coming from it", async () => {
    const direct = await nexus([
      "-c",
      config((c) => ((c.ssh as Record<string, unknown>).proxyJump = "none")),
      "status",
    ]);
    expect(direct.exitCode, direct.all).not.toBe(0);
    expect(direct.all).toMatch(/authentication failed/);

    const before = loginsFrom(info.bastion.address);
    const release = uniqueRelease("bastion");
    const run = await nexus(["-c", config(), "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    const after = loginsFrom(info.bastion.address);
    for (const [i, count] of after.entries())
      expect(count, info.hosts[i]?.name).toBeGreaterThan(before[i] ?? 0);
    expect(await servedRelease()).toBe(release);
  });

  it("status, logs, exec and check work through it", async () => {
    const file = config();
    const status = await nexus(["-c", file, "status"]);
    expect(status.exitCode, status.all).toBe(0);
    for (const h of info.hosts) expect(status.stdout).toMatch(new RegExp(`${h.name}\\s+in rotation`));

    const logs = await nexus(["-c", file, "logs", "--lines", "5"]);
    expect(logs.exitCode, logs.all).toBe(0);
    expect(logs.stdout).toMatch(/listening on/);

    const exec = await nexus(["-c", file, "exec", "--", 'echo "on $NEXUS_SANDBOX_HOST"']);
    expect(exec.exitCode, exec.all).toBe(0);
    for (const h of info.hosts) expect(exec.stdout).toContain(`on ${h.name}`);

    const check = await nexus(["-c", file, "check"]);
    expect(check.exitCode, check.all).toBe(0);
  });

  it("rolls back through it", async () => {
    const first = uniqueRelease("bastion-a");
    expect((await nexus(["-c", config(), "deploy", "--release-id", first])).exitCode).toBe(0);
    const second = uniqueRelease("bastion-b");
    expect((await nexus(["-c", config(), "deploy", "--release-id", second])).exitCode).toBe(0);
    const run = await nexus(["-c", config(), "rollback"]);
    expect(run.exitCode, run.all).toBe(0);
    expect(await servedRelease()).toBe(first);
  });

  it("sends the artifact over HTTP through a port forwarded back when SFTP is not used", async () => {
    const release = uniqueRelease("bastion-http");
    const run = await nexus([
      "-c",
      config((c) => (c.transfer = { method: "http" })),
      "--json",
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(0);
    const uploads = run.stdout
      .split("\n")
      .filter((line) => line.includes('"step":"upload"') && line.includes('"status":"done"'));
    expect(uploads).toHaveLength(info.hosts.length);
    for (const line of uploads) expect(line).toMatch(/"message":"http, /);
    expect(await servedRelease()).toBe(release);
  });

  it("setup --dry-run works through it; an unknown bastion key stops the command until trusted", async () => {
    const dry = await nexus(["-c", config(), "setup", "--dry-run"]);
    expect(dry.exitCode, dry.all).toBe(0);
    for (const h of info.hosts) expect(dry.all).toContain(`${h.name}: would create`);

    const hop = `${info.user}@${info.bastion.address}:${info.bastion.sshPort}`;
    const knownHosts = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-kh-")), "known_hosts");
    writeFileSync(
      knownHosts,
      readFileSync(info.knownHosts, "utf8")
        .split("\n")
        .filter((line) => !line.startsWith(`[${info.bastion.address}]`))
        .join("\n"),
    );
    const withoutBastion = config((c) => ((c.ssh as Record<string, unknown>).knownHosts = knownHosts));
    const refused = await nexus(["-c", withoutBastion, "status"]);
    expect(refused.exitCode, refused.all).not.toBe(0);
    expect(refused.all).toContain(`unknown host key for [${info.bastion.address}]:${info.bastion.sshPort}`);
    expect(refused.all).toContain(`nexus -c ${withoutBastion} trust ${hop}`);

    const trust = await nexus(["-c", withoutBastion, "trust", hop, "--yes"]);
    expect(trust.exitCode, trust.all).toBe(0);
    expect((await nexus(["-c", withoutBastion, "status"])).exitCode).toBe(0);
  });

  it("takes ProxyJump from the ssh config (through an Include) and names what nexus does not honour there", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-sshcfg-"));
    const sshConfig = path.join(dir, "config");
    // The sandbox's file sets IdentitiesOnly, UserKnownHostsFile and StrictHostKeyChecking as nexus
    // behaves anyway (its key, no agent; its known_hosts; strict): only ServerAliveInterval is news.
    writeFileSync(sshConfig, `Include ${info.sshConfig}\nHost *\n  ServerAliveInterval 30\n`);
    expect(existsSync(info.sshConfig)).toBe(true);
    const file = config((c) => {
      c.ssh = { ...(c.ssh as Record<string, unknown>), proxyJump: undefined, configFile: sshConfig };
      // By alias: HostName (and ProxyJump) come from the ssh config; the upstream stays the address.
      c.servers = (c.servers as Record<string, unknown>[]).map((s) => ({
        ...s,
        host: s.name,
        upstream: `${s.host}:3000`,
      }));
    });
    const run = await nexus(["-c", file, "status"], { env: { SSH_AUTH_SOCK: "" } });
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/sets ServerAliveInterval for nexus-\w+: nexus does not honour it \(/);
    expect(run.all).not.toMatch(/IdentitiesOnly|UserKnownHostsFile|StrictHostKeyChecking/);
  });
});
