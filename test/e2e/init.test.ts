import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
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
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

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

  it("reads package.json for the entry script, writes the balancer type, sudo -n commands for a non-root user, the watch with its access log, and lists setup, trust and check next", async () => {
    const app = mkdtempSync(path.join(os.tmpdir(), "nexus-init-app-"));
    writeFileSync(
      path.join(app, "package.json"),
      JSON.stringify({ name: "shop", scripts: { start: "node dist/index.js" } }),
    );
    const run = await nexus(
      ["init", "--servers", "web1=10.0.0.1", "--user", "deploy", "--watch", "30s", "-y"],
      {
        cwd: app,
      },
    );
    expect(run.exitCode, run.all).toBe(0);
    const data = JSON.parse(readFileSync(path.join(app, "deploy.config.json"), "utf8"));
    expect(data.app.start).toBe("dist/index.js");
    expect(data.balancer).toMatchObject({
      testCommand: "sudo -n /usr/sbin/nginx -t",
      reloadCommand: "sudo -n /usr/sbin/nginx -s reload",
      accessLog: "/var/log/nginx/access.log",
    });
    expect(data.rolling.watch).toBe("30s");
    for (const next of ["setup --dry-run", "setup ", "trust web1", "check ", "deploy --dry-run"])
      expect(run.stdout).toContain(`nexus ${next}`);
    expect(run.stdout).toContain("no package-lock.json");

    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "shop", main: "lib/main.js" }));
    writeFileSync(path.join(app, "package-lock.json"), "{}");
    const haproxy = await nexus(
      [
        "init",
        "--servers",
        "web1=10.0.0.1",
        "--balancer",
        "haproxy",
        "--backend",
        "shop_be",
        "--force",
        "-y",
      ],
      { cwd: app },
    );
    expect(haproxy.exitCode, haproxy.all).toBe(0);
    const again = JSON.parse(readFileSync(path.join(app, "deploy.config.json"), "utf8"));
    expect(again.app.start).toBe("lib/main.js");
    expect(again.balancer).toEqual({ type: "haproxy", host: "web1", backend: "shop_be" });
    expect(haproxy.stdout).not.toContain("no package-lock.json");
    expect(haproxy.stdout).toContain("nexus haproxy-config");
  });

  describe.skipIf(!existsSync("/usr/bin/script"))("on a terminal", () => {
    /** init on a pseudo-terminal: each answer typed once its question is on the screen. */
    async function interactive(answers: [RegExp, string][], cwd: string) {
      const env = { ...process.env } as Record<string, string | undefined>;
      delete env.CI;
      const cli = path.join(PROJECT_ROOT, "bin", "nexus.js");
      const child = execa(
        "script",
        ["-qec", `stty cols 120 && exec node ${JSON.stringify(cli)} init`, "/dev/null"],
        {
          cwd,
          env,
          extendEnv: false,
          reject: false,
          timeout: 60_000,
        },
      );
      let screen = "";
      let next = 0;
      child.stdout?.on("data", (chunk: Buffer) => {
        screen += chunk.toString();
        while (next < answers.length && (answers[next] as [RegExp, string])[0].test(screen)) {
          child.stdin?.write((answers[next] as [RegExp, string])[1]);
          screen = "";
          next++;
        }
      });
      const result = await child;
      return { ...result, asked: next };
    }

    it("asks for the entry script, balancer, commands, key and watch; Ctrl-D or Ctrl-C at a prompt exits 130 quietly, writing nothing", async () => {
      const app = mkdtempSync(path.join(os.tmpdir(), "nexus-init-tty-"));
      writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "shop", main: "dist/app.js" }));
      const full = await interactive(
        [
          [/app name \(shop\):/, "\r"],
          [/entry script \(package\.json main\) \(dist\/app\.js\):/, "\r"],
          [/servers, name=host/, "web1=10.0.0.1\r"],
          [/SSH user/, "deploy\r"],
          [/SSH private key file/, "~/.ssh/deploy_ed25519\r"],
          [/deploy path/, "\r"],
          [/load balancer: nginx or haproxy \(nginx\):/, "\r"],
          [/server that runs Nginx/, "\r"],
          [/watch each batch/, "y\r"],
          [/servers file on it/, "\r"],
          [/tests the Nginx config \(sudo -n \/usr\/sbin\/nginx -t\):/, "\r"],
          [/reloads Nginx \(sudo -n \/usr\/sbin\/nginx -s reload\):/, "\r"],
          [/Nginx access log/, "/var/log/nginx/nexus.log\r"],
        ],
        app,
      );
      expect(full.exitCode, full.stdout).toBe(0);
      const data = JSON.parse(readFileSync(path.join(app, "deploy.config.json"), "utf8"));
      expect(data.app.start).toBe("dist/app.js");
      expect(data.ssh).toEqual({ user: "deploy", privateKey: "~/.ssh/deploy_ed25519" });
      expect(data.balancer.testCommand).toBe("sudo -n /usr/sbin/nginx -t");
      expect(data.balancer.accessLog).toBe("/var/log/nginx/nexus.log");
      expect(data.rolling.watch).toBe("30s");

      for (const key of ["\u0004", "\u0003"]) {
        const other = mkdtempSync(path.join(os.tmpdir(), "nexus-init-tty-"));
        const stopped = await interactive([[/app name/, key]], other);
        expect(stopped.exitCode, stopped.stdout).toBe(130);
        expect(stopped.stdout).not.toMatch(/internal error|Aborted|Error/);
        expect(existsSync(path.join(other, "deploy.config.json"))).toBe(false);
      }
    });
  });
});
