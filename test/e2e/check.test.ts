import { appendFileSync, copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import type { CheckItem, CheckReport } from "../../src/check/types.js";
import { binDirWithout } from "../fixtures/path-without.js";
import {
  giveToHostUser,
  hostHome,
  nexus,
  uniqueRelease,
  upstreamFilePath,
  waitForPort,
  writeConfig,
} from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

async function check(
  overrides: Record<string, unknown> = {},
): Promise<{ exitCode: number; report: CheckReport }> {
  const run = await nexus(["--json", "-c", writeConfig(overrides), "check"]);
  const line = run.stdout.trim().split("\n").at(-1) ?? "";
  let report: CheckReport;
  try {
    report = JSON.parse(line) as CheckReport;
  } catch {
    throw new Error(`no JSON report from nexus check (exit ${run.exitCode}):\n${run.all}`);
  }
  return { exitCode: run.exitCode, report };
}

function failed(report: CheckReport, check: string, target?: string): CheckItem {
  const item = report.items.find(
    (i) => i.check === check && i.status === "fail" && (target === undefined || i.target.startsWith(target)),
  );
  if (!item) throw new Error(`no failed "${check}" item:\n${JSON.stringify(report.items, null, 1)}`);
  return item;
}

describe("nexus check", () => {
  const info = sandboxInfo();
  const [alpha, beta, gamma] = info.hosts;
  if (!alpha || !beta || !gamma) throw new Error("the sandbox needs 3 hosts");
  const servers = (edit: (h: (typeof info.hosts)[number]) => Record<string, unknown>) =>
    info.hosts.map((h) => ({
      name: h.name,
      host: h.address,
      port: h.sshPort,
      env: { HOST: h.address },
      ...edit(h),
    }));

  beforeAll(async () => {
    const run = await nexus(["-c", writeConfig(), "deploy", "--release-id", uniqueRelease("check")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("passes on the sandbox: a table, or JSON, every check ok or a warning", async () => {
    const table = await nexus(["-c", writeConfig(), "check"]);
    expect(table.exitCode, table.all).toBe(0);
    expect(table.stdout).toMatch(/TARGET\s+CHECK\s+STATUS\s+DETAIL/);
    expect(table.stdout).toMatch(/all checks passed/);
    const { exitCode, report } = await check();
    expect(exitCode).toBe(0);
    expect(report.ok).toBe(true);
    const checks = new Set(report.items.map((i) => i.check));
    for (const name of [
      "ssh",
      "node",
      "npm",
      "pm2",
      "pm2 startup",
      "deploy path",
      "disk",
      "app port",
      "health",
      "upstream file",
      "upstream servers",
      "upstream edit",
      "nginx test",
      "upstream included",
      "nginx reload",
      "pid file",
    ]) {
      expect(checks, name).toContain(name);
    }
    expect(report.items.filter((i) => i.status === "fail")).toEqual([]);
    const ssh = report.items.find((i) => i.check === "ssh" && i.target === "nexus-beta");
    expect(ssh?.detail).toContain(`${info.user}@`);
    // No systemd in the sandbox: PM2's startup unit is missing, a warning with the fix.
    const startup = report.items.find((i) => i.check === "pm2 startup");
    expect(startup).toMatchObject({ status: "warn", fix: expect.stringMatching(/pm2 startup/) });
  });

  it("times a bare command and names a login shell that is slow to start, with what ~/.bashrc costs", async () => {
    const bashrc = path.join(hostHome("nexus-beta"), ".bashrc");
    const original = readFileSync(bashrc, "utf8");
    // As nvm's init costs: every command sshd starts on nexus-beta pays it.
    appendFileSync(bashrc, "sleep 0.6\n");
    try {
      const { report } = await check();
      const item = report.items.find((i) => i.check === "login shell" && i.target === "nexus-beta");
      expect(item, JSON.stringify(report.items, null, 1)).toMatchObject({ status: "warn" });
      expect(item?.detail).toMatch(/bash takes ~\d+ ms to start for each command sshd runs/);
      expect(item?.detail).toMatch(/~\/\.bashrc alone takes (\d+) ms/);
      expect(Number(/~\/\.bashrc alone takes (\d+) ms/.exec(item?.detail ?? "")?.[1])).toBeGreaterThanOrEqual(
        600,
      );
      expect(item?.fix).toMatch(/interactive/);
      expect(
        report.items.find((i) => i.check === "login shell" && i.target === "nexus-alpha")?.detail,
      ).toMatch(/a bare command: \d+ ms on an exec channel, \d+ ms through nexus's remote shell/);
    } finally {
      writeFileSync(bashrc, original);
    }
  });

  it("pm2 not on the non-interactive PATH", async () => {
    const bashrc = path.join(hostHome("nexus-beta"), ".bashrc");
    const original = readFileSync(bashrc, "utf8");
    // Every command of the machine but pm2 (one installed globally in /usr/bin included).
    const bin = binDirWithout(path.join(hostHome("nexus-beta"), "no-pm2-bin"), ["pm2"]);
    appendFileSync(bashrc, `export PATH=${bin}\n`);
    try {
      const { exitCode, report } = await check();
      expect(exitCode).toBe(1);
      const item = failed(report, "pm2", "nexus-beta");
      expect(item.detail).toMatch(/not found on the non-interactive PATH/);
      expect(item.fix).toMatch(/npm install -g pm2|PATH/);
    } finally {
      writeFileSync(bashrc, original);
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("the upstream file not included by Nginx", async () => {
    const decoy = path.join(hostHome(info.lb.host), "not-included-upstream.conf");
    copyFileSync(info.lb.upstreamFile, decoy);
    giveToHostUser(info.lb.host, decoy);
    try {
      const { exitCode, report } = await check({
        balancer: { upstreamFile: "~/not-included-upstream.conf" },
      });
      expect(exitCode).toBe(1);
      const item = failed(report, "upstream included");
      expect(item.detail).toMatch(/does not include/);
      expect(item.fix).toMatch(/include .*not-included-upstream\.conf;/);
    } finally {
      rmSync(decoy, { force: true });
    }
  });

  // Only the deploy-user sandbox (the default as root, as in CI) runs Nginx's commands through sudo.
  it.skipIf(info.login !== "deploy-user")("sudo asking for a password", async () => {
    // Arguments the sudoers rule does not list: sudo -n refuses instead of prompting.
    const { exitCode, report } = await check({
      balancer: {
        testCommand: info.lb.testCommand.replace(/ -t$/, " -q -t"),
        reloadCommand: info.lb.reloadCommand.replace(/ -s reload$/, " -q -s reload"),
      },
    });
    expect(exitCode).toBe(1);
    expect(failed(report, "nginx test").detail).toMatch(/asks for a password/);
    expect(failed(report, "nginx test").fix).toMatch(/sudo/);
    expect(failed(report, "nginx reload").fix).toMatch(/sudo/);
  });

  it("the deploy path not writable", async () => {
    const { exitCode, report } = await check({ deployPath: "/opt/nexus-check-not-writable/app" });
    expect(exitCode).toBe(1);
    const item = failed(report, "deploy path");
    expect(item.detail).toMatch(/not writable/);
    expect(item.fix).toMatch(/chown/);
    if (info.login !== "deploy-user") return;
    // The fix, run as printed (the sandbox's servers are this machine), makes it writable.
    try {
      await runRootFix(item.fix, os.tmpdir());
      const { report: after } = await check({ deployPath: "/opt/nexus-check-not-writable/app" });
      expect(after.items.filter((i) => i.check === "deploy path").every((i) => i.status === "ok")).toBe(true);
    } finally {
      rmSync("/opt/nexus-check-not-writable", { recursive: true, force: true });
    }
  }, 300_000);

  it("the app port held by another process", async () => {
    // A stranger on beta's address, on the port this config gives the app.
    const squatter = execa(
      "node",
      [
        "-e",
        `require("http").createServer((q, s) => s.end("x")).listen(3999, ${JSON.stringify(beta.address)})`,
      ],
      { reject: false },
    );
    try {
      await waitForPort(beta.address, 3999);
      const { exitCode, report } = await check({
        app: { port: 3999 },
        health: { port: 3000 },
        servers: servers((h) => ({ upstream: `${h.address}:3000` })),
      });
      expect(exitCode).toBe(1);
      const item = failed(report, "app port", "nexus-beta");
      expect(item.detail).toMatch(/3999 is held by another process/);
      expect(item.fix).toMatch(/app\.port/);
    } finally {
      squatter.kill("SIGKILL");
      await squatter;
    }
  });

  it("a server missing from the upstream file", async () => {
    const { exitCode, report } = await check({
      servers: servers((h) => (h.name === "nexus-gamma" ? { upstream: `${h.address}:3001` } : {})),
    });
    expect(exitCode).toBe(1);
    const item = failed(report, "upstream servers");
    expect(item.detail).toContain(`nexus-gamma (${gamma.address}:3001)`);
    expect(item.fix).toContain(`server ${gamma.address}:3001;`);
  });

  /** The command a fix gives "as root:", in backticks, run as printed (`nexus` is this checkout's CLI). */
  async function runRootFix(fix: string | undefined, cwd: string): Promise<void> {
    // The sandbox's balancer host is this machine.
    const command = /as root on the (?:balancer host|server): `([^`]+)`/.exec(fix ?? "")?.[1];
    if (!command) throw new Error(`no "as root: \`...\`" command in the fix: ${fix}`);
    const cli = `node ${JSON.stringify(path.join(PROJECT_ROOT, "bin", "nexus.js"))}`;
    const run = await execa("sh", ["-c", command.replace(/^nexus /, `${cli} `)], {
      cwd,
      reject: false,
      all: true,
    });
    expect(run.exitCode, `${command}\n${run.all}`).toBe(0);
  }

  describe.skipIf(info.login !== "deploy-user")("the fixes it prints work as printed", () => {
    it("a missing servers file: nginx-config --servers-only writes it, chgrp/chmod make it editable", async () => {
      const file = path.join(
        path.dirname(upstreamFilePath()),
        `fix-${Math.random().toString(16).slice(2, 8)}.conf`,
      );
      const config = writeConfig({ balancer: { upstreamFile: file } });
      const cwd = path.dirname(config);
      try {
        const first = await nexus(["--json", "-c", config, "check"]);
        const report = JSON.parse(first.stdout.trim().split("\n").at(-1) ?? "") as CheckReport;
        const missing = failed(report, "upstream file");
        expect(missing.detail).toContain("does not exist");
        await runRootFix(missing.fix, cwd);
        expect(readFileSync(file, "utf8")).toMatch(/^server .*max_fails=3/m);
        expect(readFileSync(file, "utf8")).not.toMatch(/upstream|proxy_/);

        const second = await nexus(["--json", "-c", config, "check"]);
        const again = JSON.parse(second.stdout.trim().split("\n").at(-1) ?? "") as CheckReport;
        expect(again.items.find((i) => i.check === "upstream servers")?.status).toBe("ok");
        const edit = failed(again, "upstream edit");
        await runRootFix(edit.fix, cwd);
        const third = await nexus(["--json", "-c", config, "check"]);
        const done = JSON.parse(third.stdout.trim().split("\n").at(-1) ?? "") as CheckReport;
        expect(done.items.find((i) => i.check === "upstream edit")?.status).toBe("ok");
      } finally {
        rmSync(file, { force: true });
      }
    }, 420_000);

    it("a test and reload sudo does not allow: the sudoers rule it prints, installed as printed, allows them", async () => {
      // The sandbox's own commands with one more (harmless) flag: no sudoers rule names them yet.
      const testCommand = info.lb.testCommand.replace(/ -t$/, " -q -t");
      const reloadCommand = info.lb.reloadCommand.replace(/ -s reload$/, " -q -s reload");
      const appName = `fix-${Math.random().toString(16).slice(2, 8)}`;
      const overrides = { app: { name: appName }, balancer: { testCommand, reloadCommand } };
      const sudoers = `/etc/sudoers.d/nexus-${appName}`;
      try {
        const { report } = await check(overrides);
        const test = failed(report, "nginx test");
        expect(test.detail).toMatch(/asks for a password/);
        expect(failed(report, "nginx reload").fix).toBe(test.fix);
        await runRootFix(test.fix, os.tmpdir());
        const { report: after } = await check(overrides);
        for (const name of ["nginx test", "nginx reload"])
          expect(after.items.find((i) => i.check === name)?.status, name).toBe("ok");
      } finally {
        rmSync(sudoers, { force: true });
      }
    }, 300_000);
  });

  it("a reload command that is not there is a failure, never ok (the check does not run it)", async () => {
    const { report } = await check({ balancer: { reloadCommand: "nginx-not-installed -s reload" } });
    const item = failed(report, "nginx reload");
    expect(item.detail).toMatch(/nginx-not-installed is not on .* non-interactive PATH/);
  });
});
