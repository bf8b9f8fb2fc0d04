import { describe, expect, it } from "vitest";
import { detectPackageManager } from "../../src/artifact/package-manager.js";
import { balancerItems } from "../../src/balancer/nginx/check.js";
import { dumpCommand, sudoListCommand } from "../../src/balancer/nginx/check-script.js";
import { needsHandWrittenRule, sudoersLine, withoutSudo } from "../../src/balancer/nginx/sudoers.js";
import { parseFacts } from "../../src/check/facts.js";
import { healthItem } from "../../src/check/health.js";
import { serverItems } from "../../src/check/server-checks.js";
import { pm2CheckArgs, pm2Items } from "../../src/process/pm2/check.js";
import { installKeyCommand } from "../../src/setup/run.js";

const serverCtx = {
  server: "web1",
  deployPath: "/home/deploy/apps/api",
  artifactEstimate: 10 * 1024 * 1024,
};
const pm2Ctx = { server: "web1", appPort: 3000, pm2Name: "api" };

/** Every item of a server's check: the server's own, then PM2's. */
function serverAndPm2Items(lines: string[]) {
  return [...serverItems(facts(lines), serverCtx), ...pm2Items(facts(lines), pm2Ctx)];
}

function facts(lines: string[]) {
  return parseFacts(`${lines.join("\n")}\n`);
}

const healthyServer = [
  "user=deploy",
  "path=/usr/bin:/bin",
  "node_path=/usr/bin/node",
  "node_version=v20.1.0",
  "npm_path=/usr/bin/npm",
  "npm_version=10.0.0",
  "pm2_path=/usr/local/bin/pm2",
  "pm2_version=5.3.0",
  "pm2_unit=/etc/systemd/system/pm2-deploy.service",
  "pm2_unit_enabled=enabled",
  "deploy_existing=/home/deploy/apps/api",
  "deploy_writable=1",
  "free_kb=10485760",
  "port_listeners=0",
];

describe("check facts", () => {
  it("reads key=value lines and @@ sections", () => {
    const f = parseFacts("a=1\nb=x=y\n@@test\nline 1\nline 2\n@@end\nc=3\n");
    expect(f.values.get("a")).toBe("1");
    expect(f.values.get("b")).toBe("x=y");
    expect(f.values.get("c")).toBe("3");
    expect(f.sections.get("test")).toBe("line 1\nline 2");
  });
});

describe("server checks", () => {
  it("a ready server: all ok", () => {
    const items = serverAndPm2Items(healthyServer);
    expect(items.filter((i) => i.status !== "ok")).toEqual([]);
  });

  it("pm2 missing, installed by nvm: names the nvm directory in the fix", () => {
    const lines = healthyServer.filter((l) => !l.startsWith("pm2_"));
    lines.push("nvm_bin=/home/deploy/.nvm/versions/node/v20.1.0/bin");
    const pm2 = serverAndPm2Items(lines).find((i) => i.check === "pm2");
    expect(pm2).toMatchObject({ status: "fail" });
    expect(pm2?.fix).toContain("export PATH=/home/deploy/.nvm/versions/node/v20.1.0/bin:$PATH");
  });

  it("no PM2 startup unit is a warning, an unwritable deploy path and low disk fail", () => {
    const lines = healthyServer
      .filter((l) => !/^(pm2_unit|deploy_writable|free_kb)/.test(l))
      .concat(["free_kb=1024", "deploy_existing=/opt", "deploy_owner=root:root drwxr-xr-x"]);
    const items = serverAndPm2Items(lines);
    expect(items.find((i) => i.check === "pm2 startup")).toMatchObject({ status: "warn" });
    expect(items.find((i) => i.check === "deploy path")).toMatchObject({
      status: "fail",
      fix: expect.stringContaining("chown deploy:"),
    });
    expect(items.find((i) => i.check === "disk")).toMatchObject({ status: "fail" });
  });

  it("the app port: ours is fine, a stranger's fails", () => {
    const ours = serverAndPm2Items([...healthyServer, "port_listeners=1", "port_holder=app"]);
    expect(ours.find((i) => i.check === "app port")).toMatchObject({ status: "ok" });
    const theirs = serverAndPm2Items([...healthyServer, "port_listeners=1", "port_holder=other"]);
    expect(theirs.find((i) => i.check === "app port")).toMatchObject({
      status: "fail",
      fix: expect.stringContaining("app.port"),
    });
  });

  it("only listeners on the app's address (or all addresses) count", () => {
    expect(pm2CheckArgs({ appPort: 3000, appHost: "10.0.0.2", pm2Name: "api" })).toEqual([
      "0BB8",
      "0200000A",
      "api",
    ]);
    // A host name is no address /proc/net/tcp shows: a listener on any address holds the port.
    expect(pm2CheckArgs({ appPort: 3000, appHost: "app.internal", pm2Name: "api" })[1]).toBe("");
  });
});

describe("health contract", () => {
  it("reports a release, a plain OK, an error, and no answer", () => {
    expect(healthItem("w", "/health", "auto", { status: 200, json: true, release: "r1" }).status).toBe("ok");
    expect(healthItem("w", "/health", "auto", { status: 200, json: false }).detail).toMatch(/process checks/);
    expect(healthItem("w", "/health", true, { status: 200, json: false })).toMatchObject({
      status: "fail",
      fix: expect.stringContaining('"auto"'),
    });
    expect(healthItem("w", "/health", "auto", { status: 503, json: true }).status).toBe("fail");
    expect(healthItem("w", "/health", "auto", { json: false, error: "ECONNREFUSED" }).status).toBe("warn");
  });
});

describe("balancer checks", () => {
  const ctx = {
    target: "lb (balancer)",
    upstreamFile: "/etc/nginx/nexus/upstream.conf",
    pidFile: "/run/nginx.pid",
    testCommand: "sudo -n /usr/sbin/nginx -t",
    reloadCommand: "sudo -n /usr/sbin/nginx -s reload",
    servers: [
      { name: "a", upstream: "10.0.0.1:3000" },
      { name: "b", upstream: "10.0.0.2:3000" },
    ],
    hasDump: true,
    hasReloadList: true,
  };
  const upstream = "@@upstream\nserver 10.0.0.1:3000;\nserver 10.0.0.2:3000;\n@@end";
  const good = [
    "user=deploy",
    "up_exists=1",
    "up_readable=1",
    "up_writable=1",
    "flock=1",
    "pid_readable=1",
    "pid_alive=1",
    "test_rc=0",
    "dump_rc=0",
    "@@dump",
    "# configuration file /etc/nginx/nginx.conf:",
    "# configuration file /etc/nginx/nexus/upstream.conf:",
    "@@end",
    "reload_sudo_rc=0",
    upstream,
  ];

  it("a ready balancer: all ok", () => {
    expect(balancerItems(facts(good), ctx).filter((i) => i.status !== "ok")).toEqual([]);
  });

  it("a reload without sudo, as a user who does not own the Nginx master: it could not signal it", () => {
    const plain = { ...ctx, reloadCommand: "nginx -s reload" };
    const bin = "reload_bin=/usr/sbin/nginx";
    const owned = balancerItems(facts([...good, bin, "uid=1000", "master_uid=0"]), plain);
    expect(owned.find((i) => i.check === "nginx reload")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/the Nginx master is uid 0's/),
    });
    const mine = balancerItems(facts([...good, bin, "uid=1000", "master_uid=1000"]), plain);
    expect(mine.find((i) => i.check === "nginx reload")).toMatchObject({
      status: "ok",
      detail: expect.stringMatching(/^not run \(check changes nothing\): \/usr\/sbin\/nginx is there/),
    });
  });

  it("a reload check that could not see enough is never ok: a command not on the PATH fails, an unknown master warns", () => {
    const plain = { ...ctx, reloadCommand: "nginx -s reload" };
    const reload = (extra: string[]) =>
      balancerItems(facts([...good, ...extra]), plain).find((i) => i.check === "nginx reload");
    expect(reload(["uid=1000", "master_uid=1000"])).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/nginx is not on .*non-interactive PATH/),
      fix: expect.stringMatching(/sudo -n \/usr\/sbin\/nginx -s reload/),
    });
    expect(reload(["reload_bin=/usr/sbin/nginx", "uid=1000"])?.status).toBe("warn");
  });

  it("a reload sudo allows only through a rule with a password: a warning (sudo -n -l CMD says yes anyway)", () => {
    const listing = (rules: string) =>
      `@@sudolist\nMatching Defaults entries for deploy on lb:\n    env_reset\n\nUser deploy may run the following commands on lb:\n${rules}\n@@end`;
    const reload = (rules: string) =>
      balancerItems(facts([...good, listing(rules)]), ctx).find((i) => i.check === "nginx reload");
    expect(
      reload("    (root) NOPASSWD: /usr/sbin/nginx -t, /usr/sbin/nginx -T\n    (ALL : ALL) ALL")?.status,
    ).toBe("warn");
    expect(
      reload("    (root) NOPASSWD: /usr/sbin/nginx -t, /usr/sbin/nginx -T, /usr/sbin/nginx -s reload")
        ?.status,
    ).toBe("ok");
    expect(reload("    (root) NOPASSWD: /usr/sbin/nginx")?.status).toBe("ok");
    expect(reload("    (root) NOPASSWD: /usr/sbin/nginx -s *")?.status).toBe("ok");
    expect(reload("    (ALL) NOPASSWD: ALL")?.status).toBe("ok");
    expect(reload("    (root) NOPASSWD: /usr/sbin/nginx -t, PASSWD: /usr/sbin/nginx -s reload")?.status).toBe(
      "warn",
    );
    // No listing to read (sudo wanted a password to list): the `sudo -n -l CMD` answer stands.
    expect(
      balancerItems(facts([...good, "@@sudolist\nsudo: a password is required\n@@end"]), ctx).find(
        (i) => i.check === "nginx reload",
      )?.status,
    ).toBe("ok");
  });

  it("warns about an upstream file that holds the whole block: included in http, it could hold any directive", () => {
    const lines = good.map((l) =>
      l === upstream
        ? "@@upstream\nupstream app {\n    server 10.0.0.1:3000;\n    server 10.0.0.2:3000;\n}\n@@end"
        : l,
    );
    const items = balancerItems(facts(lines), ctx).filter((i) => i.status !== "ok");
    expect(items).toEqual([
      expect.objectContaining({
        check: "upstream file",
        status: "warn",
        detail: expect.stringMatching(/any directive Nginx runs as root/),
        fix: expect.stringMatching(/include it inside the upstream block/),
      }),
    ]);
  });

  it("names a server missing from the upstream, a file Nginx does not include, and sudo's password prompt", () => {
    const lines = good
      .map((l) => (l === upstream ? "@@upstream\nserver 10.0.0.1:3000;\n@@end" : l))
      .filter((l) => !l.includes("nexus/upstream.conf") && !/^(test_rc|reload_sudo_rc)/.test(l))
      .concat(["test_rc=1", "@@test", "sudo: a password is required", "@@end", "reload_sudo_rc=1"]);
    const items = balancerItems(facts(lines), ctx);
    const failed = Object.fromEntries(items.filter((i) => i.status === "fail").map((i) => [i.check, i]));
    expect(failed["upstream servers"]?.detail).toBe("missing: b (10.0.0.2:3000)");
    expect(failed["upstream included"]?.fix).toContain("include /etc/nginx/nexus/upstream.conf;");
    expect(failed["nginx test"]?.detail).toMatch(/asks for a password/);
    expect(failed["nginx reload"]?.fix).toMatch(/sudo/);
  });

  it("derives the read-only dump and the sudo question from the commands", () => {
    expect(dumpCommand("sudo -n nginx -t")).toBe("sudo -n nginx -T");
    expect(dumpCommand("systemctl reload nginx")).toBeUndefined();
    expect(sudoListCommand("sudo -n /usr/sbin/nginx -s reload")).toBe("sudo -n -l /usr/sbin/nginx -s reload");
    expect(sudoListCommand("nginx -s reload")).toBeUndefined();
    expect(sudoListCommand("sudo nginx -s reload; rm -rf /")).toBeUndefined();
  });
});

describe("setup", () => {
  it("the sudoers line allows exactly the test, its -T twin and the reload", () => {
    expect(sudoersLine("deploy", "sudo -n /usr/sbin/nginx -t", "sudo -n /usr/sbin/nginx -s reload")).toBe(
      "deploy ALL=(root) NOPASSWD: /usr/sbin/nginx -t, /usr/sbin/nginx -T, /usr/sbin/nginx -s reload",
    );
    expect(sudoersLine("deploy", "nginx -t", "nginx -s reload")).toBeUndefined();
    expect(withoutSudo("sudo -n -E nginx -t")).toEqual(["nginx", "-t"]);
    expect(withoutSudo("sudo -nE -- /usr/sbin/nginx -t")).toEqual(["/usr/sbin/nginx", "-t"]);
  });

  it("renders no rule for sudo options that take a value (the value is no command; the run-as user changes)", () => {
    for (const command of [
      "sudo -u root /usr/sbin/nginx -s reload",
      "sudo -n -g adm nginx -t",
      "sudo -C 3 nginx -t",
    ]) {
      expect(withoutSudo(command), command).toBeUndefined();
      expect(needsHandWrittenRule(command), command).toBe(true);
      expect(sudoersLine("deploy", command, command), command).toBeUndefined();
    }
    expect(needsHandWrittenRule("sudo -n /usr/sbin/nginx -t")).toBe(false);
    expect(needsHandWrittenRule("nginx -t")).toBe(false);
  });

  it("installs a public key once, quoted, with private modes", () => {
    const command = installKeyCommand("ssh-ed25519 AAAA nexus@ci");
    expect(command).toMatch(/ nexus 'ssh-ed25519 AAAA nexus@ci'$/);
    expect(command).toContain('chmod 600 "$keys"');
    expect(() => installKeyCommand("a\nb")).toThrow(/one line/);
  });
});

describe("check: the app's package manager on the server", () => {
  const pnpm = detectPackageManager({ packageJson: "{}", lockfiles: ["pnpm-lock.yaml"] });
  const pinned = detectPackageManager({
    packageJson: '{"packageManager":"pnpm@9.12.0"}',
    lockfiles: ["pnpm-lock.yaml"],
  });
  const item = (lines: string[], packageManager: typeof pnpm) =>
    serverItems(facts(["path=/usr/bin:/bin", ...lines]), { ...serverCtx, packageManager }).find(
      (i) => i.check === "pnpm",
    );

  it("says when the server lacks it, with the fix; fine on the PATH or through corepack with a pinned version", () => {
    expect(item([], pnpm)).toMatchObject({
      status: "fail",
      detail:
        "the app installs with pnpm, pnpm-lock.yaml, and pnpm is not on the non-interactive PATH (/usr/bin:/bin)",
    });
    expect(item([], pnpm)?.fix).toContain("npm install -g pnpm");
    expect(item([], pinned)?.fix).toContain("npm install -g pnpm@9.12.0");
    expect(item(["pnpm_path=/usr/bin/pnpm"], pnpm)).toMatchObject({ status: "ok", detail: "/usr/bin/pnpm" });
    expect(item(["corepack_path=/usr/bin/corepack"], pinned)).toMatchObject({
      status: "ok",
      detail: "not on the PATH; corepack (/usr/bin/corepack) runs pnpm@9.12.0",
    });
    // Without a pinned version corepack would pick one of its own: not counted.
    expect(item(["corepack_path=/usr/bin/corepack"], pnpm)?.status).toBe("fail");
    // npm's own item covers npm.
    const npm = detectPackageManager({ packageJson: "{}", lockfiles: ["package-lock.json"] });
    expect(serverItems(facts([]), { ...serverCtx, packageManager: npm }).map((i) => i.check)).toEqual([
      "node",
      "npm",
      "deploy path",
      "disk",
    ]);
  });
});
