import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  fleetSnapshot,
  hostHome,
  hostUser,
  interruptAt,
  lockOn,
  nexus,
  nginxConfPath,
  readUpstream,
  releaseOnDisk,
  SERVERS,
  stillServing,
  throughLb,
  uniqueRelease,
  waitForPort,
  writeConfig,
} from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

/** Every server in rotation, no lock left, and the balancer answers 200 from releases that passed their gate. */
async function expectFleetInRotationUnlocked(): Promise<void> {
  expect(readUpstream()).not.toMatch(/\bdown;/);
  for (const name of SERVERS) expect(lockOn(name)).toBeUndefined();
  const answers = await throughLb(12);
  expect(answers.every((a) => a.status === 200)).toBe(true);
}

function everyServerServing(release: string): void {
  for (const name of SERVERS) expect(currentRelease(name), name).toBe(release);
  expect(readUpstream()).not.toMatch(/\bdown;/);
  for (const name of SERVERS) expect(lockOn(name), name).toBeUndefined();
  for (const name of SERVERS)
    expect(existsSync(path.join(deployDir(name), ".nexus", "journal.json")), name).toBe(false);
}

/** A copy of the fixture app with a large file, so that packing takes a moment. */
function bigApp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-big-app-"));
  cpSync(fixture("app"), dir, { recursive: true });
  execFileSync("sh", [
    "-c",
    `head -c ${40 * 1024 * 1024} /dev/urandom > ${JSON.stringify(path.join(dir, "blob.bin"))}`,
  ]);
  return dir;
}

/**
 * The fixture app whose `npm install` kills the sshd session process running it: a real dropped
 * connection, mid-install. Once per release, or on every try.
 */
function dropSshApp(always: boolean): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-dropssh-"));
  cpSync(fixture("app"), dir, { recursive: true });
  cpSync(fixture("faults/drop-ssh.sh"), path.join(dir, "drop-ssh.sh"));
  const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  pkg.scripts = { ...pkg.scripts, preinstall: "sh drop-ssh.sh" };
  writeFileSync(path.join(dir, "package.json"), JSON.stringify(pkg, null, 2));
  if (always) writeFileSync(path.join(dir, "always"), "");
  return dir;
}

describe("faults and interruptions", () => {
  const config = writeConfig();
  // A gate of 3 s at least: a signal sent at a server's "drain ok" or "restart ok" lands while that
  // server is in hand, however late the test reads the line on a loaded machine.
  const slowGate = writeConfig({ health: { minUptime: "3s" } });
  let good = "";

  afterEach(async () => {
    // A failed test must not leave the next one a half-deployed fleet.
    if (SERVERS.some((name) => existsSync(path.join(deployDir(name), ".nexus", "journal.json")))) {
      await nexus(["-c", config, "recover"]);
    }
  });

  beforeEach(async () => {
    // Most tests leave the fleet as a fresh deploy of `good` would (they check it): no deploy then.
    if (good && (await stillServing(good))) return;
    good = uniqueRelease("good");
    const run = await nexus(["-c", config, "deploy", "--release-id", good]);
    expect(run.exitCode, run.all).toBe(0);
  });

  describe("Ctrl-C and SIGTERM", () => {
    it("while packing: exits 130 and nothing on the servers changes", async () => {
      const before = fleetSnapshot();
      const run = await interruptAt(
        ["-c", writeConfig({ app: { root: bigApp() } }), "deploy", "--release-id", uniqueRelease("int-pack")],
        /== pack/,
      );
      expect(run.sent).toBe(true);
      expect(run.exitCode, run.all).toBe(130);
      expect(fleetSnapshot()).toBe(before);
    });

    it("while staging: exits 130, nothing drained, the staged release removed", async () => {
      const release = uniqueRelease("int-stage");
      const before = readUpstream();
      const run = await interruptAt(["-c", config, "deploy", "--release-id", release], /== stage/, "SIGTERM");
      expect(run.exitCode, run.all).toBe(130);
      expect(run.all).not.toMatch(/drain ok/);
      expect(readUpstream()).toBe(before);
      for (const name of SERVERS) expect(releaseOnDisk(name, release)).toBe(false);
      everyServerServing(good);
    });

    it("while a server is drained: it goes back on the good release, in rotation, and the lock is released", async () => {
      const release = uniqueRelease("int-drained");
      const run = await interruptAt(
        ["-c", slowGate, "deploy", "--release-id", release],
        /nexus-beta: drain ok/,
      );
      expect(run.exitCode, run.all).toBe(130);
      expect(run.all).toContain("stopping at the next safe point");
      // alpha was verified on the new release and keeps it; beta, in hand, goes back.
      expect(currentRelease("nexus-alpha")).toBe(release);
      expect(currentRelease("nexus-beta")).toBe(good);
      expect(currentRelease("nexus-gamma")).toBe(good);
      await expectFleetInRotationUnlocked();
    });

    it("during the gate (SIGTERM): the server goes back on the previous release and in rotation", async () => {
      const release = uniqueRelease("int-gate");
      const run = await interruptAt(
        ["-c", slowGate, "deploy", "--release-id", release],
        /nexus-alpha: restart ok/,
        "SIGTERM",
      );
      expect(run.exitCode, run.all).toBe(130);
      expect(run.all).toMatch(/nexus-alpha\s+restored\s+\S+\s+[\d.]+s\s+interrupted before its gate passed/);
      everyServerServing(good);
    });

    it("a second Ctrl-C says what is left undone and where", async () => {
      const child = execa("node", [path.join(PROJECT_ROOT, "bin", "nexus.js"), "-c", slowGate, "deploy"], {
        reject: false,
        all: true,
        env: { CI: "true", NO_COLOR: "1" },
      });
      let sent = 0;
      child.stderr?.on("data", (chunk: Buffer) => {
        const text = chunk.toString();
        if (sent === 0 && /nexus-alpha: drain ok/.test(text)) {
          sent = 1;
          child.kill("SIGINT");
        }
        // The second once the first was handled (two pending at once would be delivered as one).
        if (sent === 1 && /stopping at the next safe point/.test(text)) {
          sent = 2;
          child.kill("SIGINT");
        }
      });
      const run = await child;
      expect(run.exitCode).toBe(3);
      expect(run.all).toMatch(/SIGINT again: quitting now\. Left undone: nexus-alpha is out of rotation/);
      const recovered = await nexus(["-c", config, "recover"]);
      expect(recovered.exitCode, recovered.all).toBe(0);
      everyServerServing(good);
    });

    it("during the rollback after a failure: the server in hand is restored, then it stops", async () => {
      const info = sandboxInfo();
      const failing = writeConfig({
        servers: info.hosts.map((h) => ({
          name: h.name,
          host: h.address,
          port: h.sshPort,
          env: { HOST: h.address, ...(h.name === "nexus-gamma" ? { FIXTURE_HEALTH_STATUS: "500" } : {}) },
        })),
        health: { deadline: "6s" },
      });
      const run = await interruptAt(
        ["-c", failing, "deploy", "--release-id", uniqueRelease("int-rb")],
        /== rollback/,
      );
      expect(run.exitCode, run.all).toBe(130);
      expect(currentRelease("nexus-gamma")).toBe(good);
      // Each server serves a release that passed its gate.
      await expectFleetInRotationUnlocked();
    });
  });

  it("kill -9 while a server is drained: the next deploy sees it, and `nexus recover` restores the fleet", async () => {
    const release = uniqueRelease("killed");
    const run = await interruptAt(
      ["-c", slowGate, "deploy", "--release-id", release],
      /nexus-beta: drain ok/,
      "SIGKILL",
    );
    expect(run.exitCode).not.toBe(0);
    expect(readUpstream()).toMatch(/\bdown;/);

    const blocked = await nexus(["-c", config, "deploy"]);
    expect(blocked.exitCode, blocked.all).toBe(1);
    expect(blocked.stderr).toContain(`\`nexus -c ${config} recover\``);
    const status = await nexus(["-c", config, "status"]);
    expect(status.stdout).toMatch(/INTERRUPTED deploy of \S+: run nexus -c \S+ recover/);

    const recovered = await nexus(["-c", config, "recover"]);
    expect(recovered.exitCode, recovered.all).toBe(0);
    everyServerServing(good);
    const answers = await throughLb(12);
    expect(answers.every((a) => a.status === 200 && a.release === good)).toBe(true);
  });

  it("kill -9 with a server an operator had drained: recover restores the fleet and leaves that one drained", async () => {
    const drained = await nexus(["-c", config, "drain", "nexus-gamma"]);
    expect(drained.exitCode, drained.all).toBe(0);
    try {
      const release = uniqueRelease("killed-drained");
      const run = await interruptAt(
        ["-c", slowGate, "deploy", "--release-id", release],
        /nexus-beta: drain ok/,
        "SIGKILL",
      );
      expect(run.exitCode).not.toBe(0);
      const recovered = await nexus(["-c", config, "recover"]);
      expect(recovered.exitCode, recovered.all).toBe(0);
      expect(recovered.stderr).toMatch(/nexus-gamma.*left drained/);
      const status = await nexus(["-c", config, "status"]);
      expect(status.stdout).toMatch(/nexus-gamma\s+drained/);
      expect(status.stdout).toMatch(/nexus-alpha\s+in rotation/);
      expect(status.stdout).toMatch(/nexus-beta\s+in rotation/);
      for (const name of SERVERS) expect(lockOn(name), name).toBeUndefined();
      const answers = await throughLb(12);
      expect(answers.every((a) => a.status === 200 && a.server !== "nexus-gamma")).toBe(true);
    } finally {
      await nexus(["-c", config, "enable", "nexus-gamma"]);
    }
  });

  describe("the load balancer", () => {
    it("unreachable: abort before any change", async () => {
      const info = sandboxInfo();
      const prefix = info.hosts[0]?.address.replace(/\d+$/, "") ?? "127.0.1.";
      const before = fleetSnapshot();
      const run = await nexus([
        "-c",
        writeConfig({
          servers: [
            ...info.hosts.map((h) => ({
              name: h.name,
              host: h.address,
              port: h.sshPort,
              env: { HOST: h.address },
            })),
            { name: "lb-gone", host: `${prefix}99`, port: 2222, upstream: `${prefix}99:3000` },
          ],
          balancer: { host: "lb-gone" },
        }),
        "deploy",
        "--only",
        SERVERS.join(","),
      ]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/lb-gone: connection refused/);
      expect(fleetSnapshot()).toBe(before);
    });

    it("its config broken by hand: no reload, a clear error, the upstream file as it was", async () => {
      const nginxConf = nginxConfPath();
      const original = readFileSync(nginxConf, "utf8");
      const upstream = readUpstream();
      appendFileSync(nginxConf, "\nthis is not nginx;\n");
      try {
        const run = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("badlb")]);
        expect(run.exitCode).toBe(1);
        expect(run.stderr).toContain("the Nginx config test failed, so nothing was reloaded");
        expect(run.stderr).toContain('unknown directive "this"');
        expect(readUpstream()).toBe(upstream);
      } finally {
        writeFileSync(nginxConf, original);
      }
      everyServerServing(good);
    });

    it("a reload that fails: the upstream file is restored", async () => {
      const upstream = readUpstream();
      const run = await nexus([
        "-c",
        writeConfig({ balancer: { reloadCommand: "echo 'reload refused by test' >&2; exit 1" } }),
        "deploy",
        "--release-id",
        uniqueRelease("badreload"),
      ]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toContain("the Nginx reload failed");
      expect(run.stderr).toContain("reload refused by test");
      expect(readUpstream()).toBe(upstream);
      everyServerServing(good);
    });
  });

  describe("servers", () => {
    const ghostConfig = () => {
      const info = sandboxInfo();
      const prefix = info.hosts[0]?.address.replace(/\d+$/, "") ?? "127.0.1.";
      return writeConfig({
        servers: [
          ...info.hosts.map((h) => ({
            name: h.name,
            host: h.address,
            port: h.sshPort,
            env: { HOST: h.address },
          })),
          { name: "nexus-ghost", host: `${prefix}98`, port: 2222, upstream: `${prefix}98:3000` },
        ],
        ssh: { readyTimeout: "3s" },
      });
    };

    it("unreachable at preflight: abort before any change", async () => {
      const before = fleetSnapshot();
      const run = await nexus(["-c", ghostConfig(), "deploy"]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/nexus-ghost: connection refused/);
      expect(fleetSnapshot()).toBe(before);
    });

    it("--skip-unreachable leaves it out with a warning and deploys the rest", async () => {
      const release = uniqueRelease("skip");
      const run = await nexus(["-c", ghostConfig(), "deploy", "--skip-unreachable", "--release-id", release]);
      expect(run.exitCode, run.all).toBe(0);
      expect(run.stderr).toContain("nexus-ghost: unreachable: left out of this command");
      expect(run.stderr).toMatch(/nexus-ghost\s+not reached/);
      for (const name of SERVERS) expect(currentRelease(name)).toBe(release);

      // status shows the rest, and the server it cannot reach as such (exit 1), instead of nothing.
      const status = await nexus(["-c", ghostConfig(), "status"]);
      expect(status.exitCode, status.all).toBe(1);
      expect(status.stdout).toMatch(/nexus-ghost\s+not listed\s+-\s+not reached over SSH/);
      for (const name of SERVERS)
        expect(status.stdout).toMatch(new RegExp(`${name}\\s+in rotation\\s+3000\\s+ok`));
    });

    it("SSH dropping mid-install: reconnects and retries staging once", async () => {
      const release = uniqueRelease("dropssh");
      const before = readUpstream();
      const run = await nexus([
        "-c",
        writeConfig({ app: { root: dropSshApp(false) } }),
        "deploy",
        "--release-id",
        release,
      ]);
      expect(run.exitCode, run.all).toBe(0);
      expect(run.stderr).toMatch(/the SSH connection was lost; reconnecting to retry staging once/);
      for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
      expect(readUpstream()).toBe(before);
    });

    it("SSH dropping on every try: a clean failure, nothing drained, no partial release", async () => {
      const app = dropSshApp(true);
      const release = uniqueRelease("dropalways");
      const before = readUpstream();
      const run = await nexus(["-c", writeConfig({ app: { root: app } }), "deploy", "--release-id", release]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/install FAILED.*SSH connection was lost/);
      expect(run.all).not.toMatch(/drain ok/);
      expect(readUpstream()).toBe(before);
      for (const name of SERVERS) expect(releaseOnDisk(name, release)).toBe(false);
      everyServerServing(good);
    });

    it("the app's port taken by another process: the gate fails, the restore too, the server is left drained and named; recover fixes it once the port is free", async () => {
      const beta = sandboxInfo().hosts.find((h) => h.name === "nexus-beta");
      if (!beta) throw new Error("no nexus-beta");
      // The app on beta stops and a stray process takes its port: it answers /health, but not as our release.
      // The hosts' own pm2 (the deploy user cannot reach a checkout in a closed home).
      execFileSync(path.join(sandboxInfo().dir, "bin", "pm2"), ["delete", "nexus-app"], {
        cwd: hostHome("nexus-beta"),
        env: {
          ...process.env,
          HOME: hostHome("nexus-beta"),
          PM2_HOME: path.join(hostHome("nexus-beta"), ".pm2"),
        },
        stdio: "ignore",
        ...hostUser("nexus-beta"),
      });
      const squatter = execa(
        "node",
        [
          "-e",
          `require("http").createServer((q, s) => s.end(JSON.stringify({ status: "ok", release: "squatter" }))).listen(3000, ${JSON.stringify(beta.address)})`,
        ],
        { reject: false },
      );
      await waitForPort(beta.address, 3000);
      try {
        const run = await nexus([
          "-c",
          writeConfig({ health: { deadline: "6s" } }),
          "deploy",
          "--release-id",
          uniqueRelease("port"),
        ]);
        expect(run.exitCode, run.all).toBe(3);
        expect(run.stderr).toMatch(/nexus-beta: health gate failed: .*answers release squatter/);
        expect(run.stderr).toMatch(/NEEDS A HUMAN: left drained/);
        expect(run.stderr).toMatch(/nexus-beta\s+needs human/);
        expect(run.stderr).toMatch(/nexus-alpha\s+rolled back/);
        expect(readUpstream()).toMatch(new RegExp(`${beta.address.replace(/\./g, "\\.")}:3000[^\n]*down;`));
        for (const name of SERVERS) expect(lockOn(name)).toBeUndefined();
        // Until recovered, no command rolls over it (its journal holds the release to go back to).
        const next = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("after")]);
        expect(next.exitCode, next.all).toBe(1);
        expect(next.stderr).toMatch(/nexus-beta: a deploy of \S+ \(.+\) did not finish here/);
        expect(next.stderr).toContain(`\`nexus -c ${config} recover\``);
        expect(next.all).not.toMatch(/== stage/);
      } finally {
        squatter.kill("SIGKILL");
        await squatter;
      }
      const recovered = await nexus(["-c", config, "recover"]);
      expect(recovered.exitCode, recovered.all).toBe(0);
      everyServerServing(good);
    });

    const canMount =
      process.getuid?.() === 0 &&
      spawnSync("sh", ["-c", "mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt"]).status === 0;

    it.skipIf(!canMount)(
      "disk full during extract: staging fails, nothing drained, the partial release removed",
      async () => {
        const app = mkdtempSync(path.join(os.tmpdir(), "nexus-fat-app-"));
        cpSync(fixture("app"), app, { recursive: true });
        // 8 MB of zeros: a few KB packed, 8 MB extracted, more than the 2 MB filesystem holds.
        execFileSync("sh", [
          "-c",
          `head -c ${8 * 1024 * 1024} /dev/zero > ${JSON.stringify(path.join(app, "zeros.bin"))}`,
        ]);
        const tiny = path.join(hostHome("nexus-gamma"), "tiny");
        execFileSync("mkdir", ["-p", tiny]);
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", tiny]);
        const before = readUpstream();
        const release = uniqueRelease("diskfull");
        try {
          const info = sandboxInfo();
          const run = await nexus([
            "-c",
            writeConfig({
              app: { root: app },
              servers: info.hosts.map((h) => ({
                name: h.name,
                host: h.address,
                port: h.sshPort,
                env: { HOST: h.address },
                ...(h.name === "nexus-gamma" ? { deployPath: "~/tiny/nexus-app" } : {}),
              })),
            }),
            "deploy",
            "--release-id",
            release,
          ]);
          expect(run.exitCode).toBe(1);
          // GNU tar says either, depending on how much room the last write found.
          expect(run.stderr).toMatch(/No space left on device|Wrote only \d+ of \d+ bytes/);
          expect(run.all).not.toMatch(/drain ok/);
          expect(readUpstream()).toBe(before);
          expect(existsSync(path.join(tiny, "nexus-app", "releases", release))).toBe(false);
          expect(existsSync(path.join(tiny, "nexus-app", "releases", `${release}.partial`))).toBe(false);
          for (const name of ["nexus-alpha", "nexus-beta"]) expect(releaseOnDisk(name, release)).toBe(false);
        } finally {
          execFileSync("umount", [tiny]);
        }
        everyServerServing(good);
      },
    );
  });
});
