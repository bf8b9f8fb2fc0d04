import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../src/config/json-schema.js";
import { loadConfig } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import {
  APP_NAME,
  currentRelease,
  DEPLOY_PATH,
  fixture,
  nexus,
  throughLb,
  uniqueRelease,
} from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

const SERVERS = ["nexus-alpha", "nexus-beta", "nexus-gamma"];

/** `nexus init` flags that describe the sandbox: hosts, key, known_hosts and its Nginx commands. */
function sandboxFlags(): string[] {
  const info = sandboxInfo();
  return [
    "--ssh-key",
    info.clientKey,
    "--known-hosts",
    info.knownHosts,
    "init",
    "--name",
    APP_NAME,
    "--root",
    fixture("app"),
    "--servers",
    info.hosts.map((h) => `${h.name}=${h.address}:${h.sshPort}`).join(","),
    "--user",
    info.user,
    "--deploy-path",
    DEPLOY_PATH,
    "--balancer-host",
    info.lb.host,
    "--upstream-file",
    info.lb.upstreamFile,
    "--test-command",
    info.lb.testCommand,
    "--reload-command",
    info.lb.reloadCommand,
    "--pid-file",
    info.lb.pidFile,
    "--env",
    "HOST={host}",
    "--env",
    "SECRET_TOKEN=s3cr3t-do-not-print",
  ];
}

describe("nexus init", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-init-"));
  const file = path.join(dir, "deploy.config.json");

  it("writes a config from flags that validates against the schema, with $schema pointing at it", async () => {
    const run = await nexus(sandboxFlags(), { cwd: dir });
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout).toContain("wrote deploy.config.json");

    const data = JSON.parse(readFileSync(file, "utf8"));
    const parsed = configSchema.safeParse(data);
    expect(parsed.success, parsed.error?.message).toBe(true);
    const schemaFile = path.resolve(dir, data.$schema);
    expect(existsSync(schemaFile), data.$schema).toBe(true);
    expect(JSON.parse(readFileSync(schemaFile, "utf8"))).toEqual(configJsonSchema());

    const config = loadConfig(file);
    const info = sandboxInfo();
    expect(config.servers.map((s) => [s.name, s.host, s.port, s.env.HOST])).toEqual(
      info.hosts.map((h) => [h.name, h.address, h.sshPort, h.address]),
    );
    expect(config.app.root).toBe(fixture("app"));
    expect(config.ssh.privateKey).toBe(info.clientKey);
  });

  it("the config it wrote deploys on the sandbox as it is", async () => {
    const release = uniqueRelease("init");
    const run = await nexus(["-c", file, "deploy", "--rolling", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).not.toContain("s3cr3t-do-not-print");
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
    const answers = await throughLb(9);
    expect(answers.every((a) => a.status === 200 && a.release === release)).toBe(true);
  });

  it("refuses to overwrite the file without --force", async () => {
    const before = readFileSync(file, "utf8");
    const refused = await nexus(["init", "--servers", "web=10.0.0.1", "-y"], { cwd: dir });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("already exists (--force overwrites it)");
    expect(readFileSync(file, "utf8")).toBe(before);

    const forced = await nexus(["init", "--servers", "web=10.0.0.1", "--force"], { cwd: dir });
    expect(forced.exitCode, forced.all).toBe(0);
    const data = JSON.parse(readFileSync(file, "utf8"));
    expect(data.servers).toEqual([{ name: "web", host: "10.0.0.1" }]);
    expect(data.balancer.host).toBe("web");
    expect(configSchema.safeParse(data).success).toBe(true);
  });

  it("without a terminal, --servers is required; a bad one is a usage error", async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), "nexus-init-"));
    const missing = await nexus(["init"], { cwd: other });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain("--servers is required");
    const bad = await nexus(["init", "--servers", "web=10.0.0.1:99999"], { cwd: other });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("the port must be between 1 and 65535");
    const unknownLb = await nexus(["init", "--servers", "web=10.0.0.1", "--balancer-host", "lb"], {
      cwd: other,
    });
    expect(unknownLb.exitCode).toBe(2);
    expect(unknownLb.stderr).toContain('balancer.host: "lb" is not a server name');
    expect(existsSync(path.join(other, "deploy.config.json"))).toBe(false);
  });

  it("defaults the upstream file to a servers file outside conf.d/ (whose files Nginx includes in http)", async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), "nexus-init-"));
    const run = await nexus(["init", "--name", "shop", "--servers", "web=10.0.0.1"], { cwd: other });
    expect(run.exitCode, run.all).toBe(0);
    const data = JSON.parse(readFileSync(path.join(other, "deploy.config.json"), "utf8"));
    expect(data.balancer.upstreamFile).toBe("/etc/nginx/nexus/shop-servers.conf");
  });

  it("points $schema at an installed nexus-deploy package when there is one", async () => {
    const project = mkdtempSync(path.join(os.tmpdir(), "nexus-init-"));
    const installed = path.join(project, "node_modules", "nexus-deploy");
    await import("node:fs/promises").then((fs) => fs.mkdir(installed, { recursive: true }));
    writeFileSync(path.join(installed, "config.schema.json"), "{}");
    const run = await nexus(["init", "-o", "deploy/production.json", "--servers", "10.0.0.1"], {
      cwd: project,
    });
    expect(run.exitCode, run.all).toBe(0);
    const data = JSON.parse(readFileSync(path.join(project, "deploy", "production.json"), "utf8"));
    expect(data.$schema).toBe("../node_modules/nexus-deploy/config.schema.json");
    expect(data.app.root).toBe("..");
    expect(data.servers).toEqual([{ name: "10.0.0.1", host: "10.0.0.1" }]);
  });
});
