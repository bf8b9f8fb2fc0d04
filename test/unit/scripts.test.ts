import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { detectPackageManager } from "../../src/artifact/package-manager.js";
import { NginxLogSource, parseRead, readFromOffset } from "../../src/balancer/nginx/watch/log-source.js";
import { outputLines } from "../../src/deploy/fleet.js";
import { jlistCommand } from "../../src/process/pm2/jlist.js";
import { Pm2 } from "../../src/process/pm2/pm2.js";
import { preparedRestart } from "../../src/process/pm2/prepared.js";
import { RESTART_SCRIPT, STOP_SCRIPT } from "../../src/process/pm2/restart-script.js";
import { processProblem, uptimeAtStart } from "../../src/process/process-manager.js";
import { layout } from "../../src/remote/layout.js";
import { type RemoteOp, script } from "../../src/remote/op.js";
import { shq } from "../../src/remote/quote.js";
import * as release from "../../src/remote/release.js";
import * as state from "../../src/remote/server-state.js";
import { installKeyCommand } from "../../src/setup/run.js";
import { LocalRunner } from "../../src/ssh/local-runner.js";
import type { InteractiveRunner, RunningCommand } from "../../src/ssh/session.js";
import { parseStart } from "../../src/start/start.js";
import { installFakePm2 } from "../fixtures/fake-pm2.js";
import { binDirWithout } from "../fixtures/path-without.js";

/**
 * The middle tier: every remote script run for real by `sh` in a temporary directory, as sshd
 * would run it on a server, with no server at all.
 */

/** A script that hangs is killed after 20 s (status null), failing its test instead of the run. */
/**
 * The timeout is a hang guard only: a script with a grace period of its own (stop-strays waits 5 s,
 * then looks through /proc again and again) takes several times that on a loaded 2-core machine.
 */
function sh(command: string, stdin = "", env: NodeJS.ProcessEnv = process.env) {
  return spawnSync("sh", ["-c", command], { encoding: "utf8", input: stdin, env, timeout: 90_000 });
}

/** Starts a command under sh with its stdin left open, as SshSession.start does. */
function startUnderSh(
  command: string,
  env: NodeJS.ProcessEnv,
  onStdout?: (text: string) => void,
): RunningCommand {
  const child = spawn("sh", ["-c", command], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    onStdout?.(chunk);
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return {
    send: (text) => child.stdin.write(text),
    end: (text) => child.stdin.end(text),
    result,
  };
}

/** Runs an op as the SSH session would, and parses its result. */
function run<T>(op: RemoteOp<T>, env?: NodeJS.ProcessEnv): T {
  const result = sh(op.command, op.stdin ?? "", env);
  return op.parse({ code: result.status, stdout: result.stdout, stderr: result.stderr }, "test");
}

function tmp(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `nexus-${prefix} `));
}

function sha256(file: string): string {
  return execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0] as string;
}

/** Builds a tar.gz with exactly the given entries (python's tarfile writes what node-tar would refuse to). */
function craftArchive(
  dir: string,
  entries: { name: string; type?: "sym" | "file"; target?: string }[],
): string {
  const file = path.join(dir, "evil.tar.gz");
  const script = `
import io, json, sys, tarfile
entries = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], "w:gz") as t:
    for e in entries:
        ti = tarfile.TarInfo(e["name"])
        if e.get("type") == "sym":
            ti.type = tarfile.SYMTYPE
            ti.linkname = e["target"]
            t.addfile(ti)
        else:
            ti.size = 1
            t.addfile(ti, io.BytesIO(b"x"))
`;
  execFileSync("python3", ["-c", script, file, JSON.stringify(entries)]);
  return file;
}

describe("hostile values reach remote commands quoted", () => {
  const values = [
    "plain",
    "with space",
    "it's",
    '"double"',
    "`id`",
    "a;b&&c||d|e",
    "line\nbreak",
    "~/home",
    "*",
    "$HOME",
    "",
    "back\\slash",
  ];

  it("each value stays one literal word for sh", () => {
    for (const value of values) {
      const out = execFileSync("sh", ["-c", `for w in ${shq(value)}; do printf '%s\\0' "$w"; done`], {
        encoding: "utf8",
      });
      expect(out.split("\0").slice(0, -1)).toEqual([value]);
    }
  });

  it("no builder runs an injected command: the canary file never appears", () => {
    const dir = tmp("canary");
    const canary = path.join(dir, "pwned");
    const evil = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `'; touch ${canary}; '`,
      `\ntouch ${canary}\n`,
    ];
    for (const bad of evil) {
      const l = layout(path.join(dir, `deploy ${bad}`));
      const ops: RemoteOp<unknown>[] = [
        release.prepare(l),
        state.inspect(l),
        state.lockAcquire(l, JSON.stringify({ user: bad })),
        state.lockRemove(l, bad),
        state.appendHistory(l, { note: bad }),
        release.markFailed(l, "r1"),
        release.writePrivateFile(l.ecosystem("r1"), bad, "writing"),
        release.activate(l, "r1"),
        release.removeReleases(l, ["r1"]),
        release.install(l, "r1", undefined),
        release.tailFile(`${l.logs}/${bad}`),
      ];
      for (const op of ops) sh(op.command, op.stdin);
    }
    expect(existsSync(canary)).toBe(false);
    // And the hostile directory names were created literally.
    expect(readdirSync(dir).some((name) => name.includes("$(touch"))).toBe(true);
  });
});

describe("an artifact that tries to escape its release is refused", () => {
  const cases: [string, { name: string; type?: "sym" | "file"; target?: string }[]][] = [
    ["a ../ entry", [{ name: "./ok.txt" }, { name: "../escaped.txt" }]],
    ["an absolute path", [{ name: "/ESCAPE_DIR/abs.txt" }]],
    ["a symlink out", [{ name: "./ok.txt" }, { name: "link", type: "sym", target: "ESCAPE_DIR" }]],
    [
      "a write through a symlink",
      [{ name: "link", type: "sym", target: "ESCAPE_DIR" }, { name: "link/through.txt" }],
    ],
    [
      "a symlink out by name, through a directory that does not exist",
      [{ name: "./sneaky", type: "sym", target: "nope/../../.." }],
    ],
  ];
  for (const [what, entries] of cases) {
    it(what, () => {
      const dir = tmp("escape");
      const outside = path.join(dir, "outside");
      mkdirSync(outside);
      const base = path.join(dir, "srv");
      const l = layout(base);
      run(release.prepare(l));
      const archive = craftArchive(
        dir,
        entries.map((e) => ({
          ...e,
          name: e.name.replace("ESCAPE_DIR", outside),
          target: e.target?.replace("ESCAPE_DIR", outside),
        })),
      );
      const result = sh(release.extract(l, archive, "r1", sha256(archive)).command);
      expect(result.status, result.stderr).not.toBe(0);
      expect(existsSync(l.release("r1"))).toBe(false);
      expect(readdirSync(l.releases)).toEqual([]);
      expect(existsSync(archive)).toBe(false);
      expect(readdirSync(outside)).toEqual([]);
      expect(existsSync(path.join(dir, "escaped.txt"))).toBe(false);
    });
  }

  it("a checksum mismatch is detected before anything is extracted", () => {
    const dir = tmp("sum");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    const archive = craftArchive(dir, [{ name: "./ok.txt" }]);
    const result = sh(release.extract(l, archive, "r1", "0".repeat(64)).command);
    expect(result.status).toBe(65);
    expect(result.stderr).toContain("checksum mismatch");
    expect(existsSync(l.release("r1"))).toBe(false);
    expect(existsSync(`${l.release("r1")}.partial`)).toBe(false);
  });

  it("a well-formed artifact extracts, relative symlinks included", () => {
    const dir = tmp("ok");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    const archive = craftArchive(dir, [
      { name: "./lib/a.js" },
      { name: "./current.js", type: "sym", target: "lib/a.js" },
      // Into node_modules, which npm installs after extraction.
      { name: "./bin/tool", type: "sym", target: "../node_modules/tool/cli.js" },
    ]);
    const result = sh(release.extract(l, archive, "r1", sha256(archive)).command);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(path.join(l.release("r1"), "current.js"), "utf8")).toBe("x");
    expect(existsSync(archive)).toBe(false);
  });

  it("names a refused symlink by its path in the release", () => {
    const dir = tmp("named");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    const archive = craftArchive(dir, [{ name: "./config/db/link", type: "sym", target: "/etc" }]);
    const result = sh(release.extract(l, archive, "r1", sha256(archive)).command);
    expect(result.status).toBe(67);
    expect(result.stderr).toContain("symlink out of the release: config/db/link");
    expect(existsSync(`${l.release("r1")}.partial`)).toBe(false);
  });

  it("staging clears what earlier uploads left in incoming/; removing a release removes its archive", () => {
    const dir = tmp("incoming");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    writeFileSync(path.join(l.incoming, "old.tar.gz"), "x");
    writeFileSync(path.join(l.incoming, ".hidden.tar.gz.part"), "x");
    run(release.prepare(l));
    expect(readdirSync(l.incoming)).toHaveLength(2);
    run(release.prepare(l, { clearIncoming: true }));
    expect(readdirSync(l.incoming)).toEqual([]);
    writeFileSync(path.join(l.incoming, "r1.tar.gz.part"), "x");
    writeFileSync(path.join(l.incoming, "r2.tar.gz"), "x");
    run(release.removeReleases(l, ["r1"]));
    expect(readdirSync(l.incoming)).toEqual(["r2.tar.gz"]);
  });
});

describe("release steps round trip under sh", () => {
  it("extract, install (npm, then reuse), activate and inspect, in a deploy path with spaces", () => {
    const dir = tmp("round trip");
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    // A fake npm: records its call and creates node_modules as `npm ci` would.
    writeFileSync(
      path.join(bin, "npm"),
      `#!/bin/sh\n[ "$1" = --version ] && { echo 10.0.0; exit 0; }\necho "$@" >> "${dir}/npm.log"\nmkdir -p node_modules/dep && echo x > node_modules/dep/index.js\n`,
    );
    chmodSync(path.join(bin, "npm"), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const l = layout(path.join(dir, "srv app"));
    run(release.prepare(l));
    const app = path.join(dir, "app");
    mkdirSync(app);
    writeFileSync(path.join(app, "package.json"), "{}");
    writeFileSync(path.join(app, "package-lock.json"), "{}");
    const archive = path.join(l.incoming, "a.tar.gz");
    execFileSync("tar", ["-czf", archive, "-C", app, "."]);
    run(release.extract(l, archive, "r1", sha256(archive)));
    const npm = detectPackageManager({ packageJson: "{}", lockfiles: ["package-lock.json"] });
    expect(run(release.install(l, "r1", npm), env).result).toBe("installed");
    run(release.activate(l, "r1"));
    execFileSync("tar", ["-czf", archive, "-C", app, "."]);
    run(release.extract(l, archive, "r2", sha256(archive)));
    expect(run(release.install(l, "r2", npm), env).result).toBe("reused");
    expect(readFileSync(path.join(dir, "npm.log"), "utf8").trim().split("\n")).toHaveLength(1);
    run(release.activate(l, "r2"));
    run(release.markFailed(l, "r1"));
    const s = run(state.inspect(l));
    expect(s.current).toBe("r2");
    expect(s.releases.map((r) => [r.id, r.failed])).toEqual(
      expect.arrayContaining([
        ["r1", true],
        ["r2", false],
      ]),
    );
    // Releasing the same id twice is refused with its named exit code.
    execFileSync("tar", ["-czf", archive, "-C", app, "."]);
    const again = sh(release.extract(l, archive, "r2", sha256(archive)).command);
    expect(again.status).toBe(66);
    run(release.removeReleases(l, ["r1"]));
    expect(existsSync(l.release("r1"))).toBe(false);
    expect(run(state.inspect(layout(path.join(dir, "nothing")))).missing).toBe(true);
  });

  it("extracts when the deploy path goes through a symlinked directory", () => {
    const dir = tmp("symlinked");
    mkdirSync(path.join(dir, "real"));
    symlinkSync(path.join(dir, "real"), path.join(dir, "link"));
    const l = layout(path.join(dir, "link", "srv"));
    run(release.prepare(l));
    const archive = craftArchive(dir, [
      { name: "./lib/a.js" },
      { name: "./main.js", type: "sym", target: "lib/a.js" },
    ]);
    const result = sh(release.extract(l, archive, "r1", sha256(archive)).command);
    expect(result.status, result.stderr).toBe(0);
  });

  it("refuses a dangling symlink whose parent does not exist", () => {
    const dir = tmp("dangling");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    const archive = craftArchive(dir, [{ name: "./bad", type: "sym", target: "/nonexistent-dir-nexus/x/y" }]);
    const result = sh(release.extract(l, archive, "r1", sha256(archive)).command);
    expect(result.status).toBe(67);
    expect(result.stderr).toContain("symlink out of the release");
  });

  it("writes private files 0600 from stdin", () => {
    const dir = tmp("private");
    const file = path.join(dir, "sub dir", "eco.json");
    run(release.writePrivateFile(file, "secret", "writing"));
    expect(readFileSync(file, "utf8")).toBe("secret");
    expect((execFileSync("stat", ["-c", "%a", file], { encoding: "utf8" }) as string).trim()).toBe("600");
  });

  it("stops what a cut-off attempt left running in a release (by cwd), even one ignoring SIGTERM, and nothing else", async () => {
    const dir = tmp("strays");
    mkdirSync(path.join(dir, "real"));
    symlinkSync(path.join(dir, "real"), path.join(dir, "link"));
    const l = layout(path.join(dir, "link", "srv"));
    run(release.prepare(l));
    mkdirSync(path.join(l.release("r1"), "node_modules"), { recursive: true });
    mkdirSync(l.release("r2"));
    const inside = spawn("sh", ["-c", "sleep 60"], { cwd: path.join(l.release("r1"), "node_modules") });
    const ready = path.join(dir, "stubborn-ready");
    const stubborn = spawn("sh", ["-c", `trap '' TERM; sleep 60 & : > '${ready}'; wait`], {
      cwd: l.release("r1"),
    });
    const other = spawn("sleep", ["60"], { cwd: l.release("r2") });
    const exited = (child: ReturnType<typeof spawn>) =>
      new Promise<string | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    const ends = [inside, stubborn].map(exited);
    let otherEnded = false;
    other.once("exit", () => {
      otherEnded = true;
    });
    try {
      // The stubborn one has set its trap and started its child before the strays are looked for.
      while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
      expect(run(release.stopStrays(l, "r1"))).toBe(true);
      expect(await Promise.all(ends)).toEqual(["SIGTERM", "SIGKILL"]);
      expect(otherEnded).toBe(false);
      expect(run(release.stopStrays(l, "r3"))).toBe(false);
    } finally {
      for (const child of [inside, stubborn, other]) child.kill("SIGKILL");
    }
  }, 120_000);

  it("keeps a private file beside it on the server and puts it back, as often as asked; none kept when there is none", () => {
    const dir = tmp("keep");
    const file = path.join(dir, "eco dir", "r1.json");
    const keep = release.keepPrivateFile(file, "keeping");
    expect(keep.command).not.toMatch(/\bcat\b/);
    expect(run(keep)).toBe(false);
    run(release.writePrivateFile(file, "old secret", "writing"));
    expect(run(keep)).toBe(true);
    run(release.writePrivateFile(file, "new secret", "writing"));
    for (let i = 0; i < 2; i++) {
      run(release.restorePrivateFile(file, "restoring"));
      expect(readFileSync(file, "utf8")).toBe("old secret");
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
  });

  it("refuses to build a path from an unsafe release id", () => {
    const l = layout("/srv/app");
    for (const bad of ["..", ".", "a/b", "-rf", "x\ny"]) {
      expect(() => release.removeReleases(l, [bad])).toThrow(/unsafe release id/);
      expect(() => release.activate(l, bad)).toThrow(/unsafe release id/);
    }
  });
});

describe("server state under sh", () => {
  it("inspect skips names outside the release-id alphabet, so no name forges a line", () => {
    const dir = tmp("inspect");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    for (const name of ["good-1", "x\n@release forged ok 1", "-rf", "a b", "r.partial"]) {
      mkdirSync(path.join(l.releases, name));
    }
    symlinkSync("releases/good-1", l.current);
    const s = run(state.inspect(l));
    expect(s.releases.map((r) => r.id)).toEqual(["good-1"]);
    expect(s.current).toBe("good-1");
  });

  it("releases are ordered by when they were staged, not by their directory's mtime (a file the app writes moves it)", () => {
    const dir = tmp("order");
    const l = layout(path.join(dir, "srv"));
    run(release.prepare(l));
    const archive = path.join(dir, "a.tar.gz");
    const at = (file: string, iso: string) => execFileSync("touch", ["-d", iso, file]);
    for (const [i, id] of ["r0", "r1", "r2"].entries()) {
      craftArchive(dir, [{ name: "./server.js" }]);
      execFileSync("mv", [path.join(dir, "evil.tar.gz"), archive]);
      run(release.extract(l, archive, id, sha256(archive)));
      at(path.join(l.staged, id), `2026-01-0${i + 1}T00:00:00Z`);
    }
    // The old release's process writes a pid file at its top when it starts again, say.
    at(l.release("r1"), "2026-02-01T00:00:00Z");
    // A release staged before stamps existed: its directory's mtime.
    mkdirSync(l.release("legacy"));
    at(l.release("legacy"), "2025-12-01T00:00:00Z");
    expect(run(state.inspect(l)).releases.map((r) => r.id)).toEqual(["legacy", "r0", "r1", "r2"]);
    run(release.removeReleases(l, ["r0"]));
    expect(readdirSync(l.staged).sort()).toEqual(["r1", "r2"]);
  });

  it("journals with forged ids are read, but their ids are not trusted", () => {
    const j = state.parseJournal('{"command":"deploy","release":"..","previous":"../../etc","pid":3}');
    expect(j).toMatchObject({ command: "deploy", release: "unknown", previous: null, pid: 3 });
    expect(state.parseJournal("{torn").command).toBe("unknown");
    expect(state.parseInspect("@current releases/..\n@release .. ok 1\n")).toEqual({
      missing: false,
      releases: [],
    });
  });

  it("the lock is taken once; removing it needs its token", () => {
    const l = layout(path.join(tmp("lock"), "srv"));
    expect(run(state.lockAcquire(l, '{"token":"aaaa1111"}'))).toEqual({ acquired: true });
    expect(run(state.lockAcquire(l, '{"token":"bbbb2222"}'))).toEqual({
      acquired: false,
      holder: '{"token":"aaaa1111"}',
    });
    expect(run(state.lockRemove(l, "bbbb2222"))).toBe(false);
    expect(run(state.lockRemove(l, "aaaa1111"))).toBe(true);
    expect(run(state.lockAcquire(l, '{"token":"bbbb2222"}'))).toEqual({ acquired: true });
  });

  it("a lock that cannot be written leaves none behind; an empty one (a write cut short) is no holder", () => {
    const l = layout(path.join(tmp("lock-full"), "srv"));
    mkdirSync(l.state, { recursive: true });
    // ulimit -f 0 with SIGXFSZ ignored: every write fails (EFBIG), as on a full disk (ENOSPC).
    const full = sh(`ulimit -f 0; trap '' XFSZ; ${state.lockAcquire(l, '{"token":"aaaa1111"}').command}`);
    expect(full.status).not.toBe(0);
    expect(full.stderr).toContain("cannot write the deploy lock");
    expect(readdirSync(l.state).filter((name) => name.startsWith("lock") && name !== "lock.mutex")).toEqual(
      [],
    );
    writeFileSync(l.lock, "");
    expect(run(state.lockAcquire(l, '{"token":"bbbb2222"}'))).toEqual({ acquired: true });
    expect(readFileSync(l.lock, "utf8")).toBe('{"token":"bbbb2222"}\n');
  });

  it("a stale lock broken by many deploys at once is broken once, and one of them holds the lock", async () => {
    for (let round = 0; round < 5; round++) {
      const l = layout(path.join(tmp("race"), "srv"));
      run(state.lockAcquire(l, '{"token":"dead0000"}'));
      // Each contender does what lockAll does with a stale lock: break it by its token, then take it.
      const contenders = Array.from({ length: 8 }, (_, i) => {
        const command = `${state.lockRemove(l, "dead0000").command}; ${state.lockAcquire(l, `{"token":"c${i}"}`).command}`;
        return new Promise<string>((resolve) => {
          const child = spawn("sh", ["-c", command]);
          let out = "";
          child.stdout.on("data", (d) => {
            out += d;
          });
          child.on("close", () => resolve(out));
        });
      });
      const outputs = await Promise.all(contenders);
      expect(outputs.filter((o) => o.includes("@acquired"))).toHaveLength(1);
      const holder = readFileSync(l.lock, "utf8");
      const winner = outputs.findIndex((o) => o.includes("@acquired"));
      expect(holder).toContain(`"c${winner}"`);
    }
  });

  it("history lines round-trip whatever they hold", () => {
    const l = layout(path.join(tmp("history"), "srv"));
    run(release.prepare(l));
    run(state.appendHistory(l, { event: "deploy", note: "it's $(id)\n`x`" }));
    run(state.appendHistory(l, { event: "drain" }));
    expect(run(state.readHistory(l))).toEqual([
      { event: "deploy", note: "it's $(id)\n`x`" },
      { event: "drain" },
    ]);
  });
});

describe("PM2 driver scripts under sh, with a fake PM2", () => {
  function setup() {
    const dir = tmp("pm2");
    const fake = installFakePm2(dir);
    const env = {
      ...process.env,
      PATH: `${fake.bin}:${process.env.PATH}`,
      FAKE_PM2_STATE: fake.state,
      PM2_HOME: fake.home,
    };
    const runner: InteractiveRunner = {
      name: "test",
      start: (command, onStdout) => startUnderSh(command, env, onStdout),
      exec: async (command, options) => {
        const r = sh(command, options?.stdin ?? "", env);
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
      },
      run: async (command, options) => {
        const r = sh(command, options?.stdin ?? "", env);
        if (r.status !== 0) throw new Error(`${options?.what}: exit ${r.status}: ${r.stderr}`);
        return r.stdout;
      },
    };
    const l = layout(path.join(dir, "srv"));
    const pm2 = new Pm2({ name: "all", killTimeout: 1000, start: parseStart("server.js", undefined) });
    const file = pm2.processFile(l, { release: "r1", cwd: l.release("r1"), env: { A: "1" } });
    run(file.write);
    return { dir, fake, runner, l, pm2, env };
  }

  it("a listing never carries a process's env: the daemon's, other apps' and removed secrets stay on the server", async () => {
    const { fake, runner, env } = setup();
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    writeFileSync(
      fake.state,
      JSON.stringify({
        next: 2,
        log: [],
        procs: [
          {
            name: "other-app",
            id: 1,
            pid: 10001,
            status: "online",
            restarts: 0,
            env: { DAEMON_AWS_SECRET_ACCESS_KEY: secret },
          },
          {
            name: "all",
            id: 2,
            pid: 10002,
            status: "online",
            restarts: 3,
            env: { NEXUS_RELEASE: "r1", OLD_TOKEN: secret },
          },
        ],
      }),
    );
    const pm2 = new Pm2({ name: "all", killTimeout: 1000, start: parseStart("server.js", undefined) });
    expect(await pm2.inspect(runner)).toEqual([
      {
        name: "all",
        pid: 10002,
        status: "online",
        restarts: 3,
        startedAt: 1,
        memory: undefined,
        cpu: undefined,
        // From its NEXUS_RELEASE, the one variable the filter reads (recover keeps a process by it).
        release: "r1",
      },
    ]);
    // What --verbose prints of the listing: names, pids, status, restarts, release; no env.
    const listing = sh(jlistCommand("all"), "", env);
    const shown = outputLines(
      { code: listing.status, stdout: listing.stdout, stderr: listing.stderr },
      (t) => t,
    );
    expect(shown.join("\n")).not.toContain(secret);
    expect(shown.join("\n")).not.toMatch(/other-app|DAEMON_AWS|OLD_TOKEN/);
    expect(shown.join("\n")).toContain('"release":"r1"');
  }, 20_000);

  it("starts the release, then replaces the old process, deleting by pm id (a name like `all` is never passed)", async () => {
    const { fake, runner, l, pm2 } = setup();
    const first = await pm2.restart(runner, l, "r1");
    expect(first.before).toEqual([]);
    expect(first.after).toHaveLength(1);
    const second = await pm2.restart(runner, l, "r1");
    expect(second.before.map((p) => p.pid)).toEqual(first.after.map((p) => p.pid));
    expect(second.after[0]?.pid).not.toBe(first.after[0]?.pid);
    const log = JSON.parse(readFileSync(fake.state, "utf8")).log as string[];
    expect(log.filter((line) => line.startsWith("delete"))).toEqual([
      `delete ${(first.after[0] as { id?: number }).id ?? 1}`,
    ]);
    expect(await pm2.inspect(runner)).toEqual([
      expect.objectContaining({ name: "all", status: "online", pid: second.after[0]?.pid }),
    ]);
    await pm2.stop(runner);
    expect(await pm2.inspect(runner)).toEqual([]);
  });

  it("a prepared restart waits for go, then lists and saves (dump 0600) on the same connection; one ended first does nothing", async () => {
    const { fake, runner, l, pm2 } = setup();
    const log = () => JSON.parse(readFileSync(fake.state, "utf8")).log as string[];
    await pm2.restart(runner, l, "r1");
    const started: RunningCommand[] = [];
    const watched: InteractiveRunner = {
      ...runner,
      start: (command, onStdout) => {
        const running = runner.start(command, onStdout);
        started.push(running);
        return running;
      },
    };
    pm2.prepareRestart(watched, l, "r1").close();
    expect(await started[0]?.result).toMatchObject({ code: 0, stdout: "" });
    expect(log().filter((line) => line.startsWith("start"))).toHaveLength(1);
    const prepared = pm2.prepareRestart(watched, l, "r1");
    const before = log().length;
    const restarted = await prepared.go();
    expect(restarted.before).toHaveLength(1);
    expect(restarted.after).toHaveLength(1);
    expect(restarted.after[0]?.pid).not.toBe(restarted.before[0]?.pid);
    expect(
      log()
        .slice(before)
        .map((line) => line.split(" ")[0]),
    ).toEqual(["delete", "start"]);
    expect(log().filter((line) => line.startsWith("start"))).toHaveLength(2);
    expect(await prepared.inspect()).toEqual([
      expect.objectContaining({ pid: restarted.after[0]?.pid, status: "online" }),
    ]);
    const dump = path.join(fake.home, "dump.pm2");
    writeFileSync(dump, "old", { mode: 0o644 });
    chmodSync(dump, 0o644);
    await prepared.persist();
    expect(readFileSync(dump, "utf8")).toContain(String(restarted.after[0]?.pid));
    expect(statSync(dump).mode & 0o777).toBe(0o600);
    prepared.close();
    expect(await started[1]?.result).toMatchObject({ code: 0 });
    await expect(prepared.inspect()).rejects.toThrow(/PM2 printed no result/);
  });

  it("a surge's prepared restart stops the process on the other port through its own connection, then saves", async () => {
    const { fake, runner, l, pm2 } = setup();
    const log = () => JSON.parse(readFileSync(fake.state, "utf8")).log as string[];
    const old = await pm2.restart(runner, l, "r1");
    run(pm2.processFile(l, { release: "r1", cwd: l.release("r1"), env: { A: "1" }, port: 3001 }).write);
    const prepared = pm2.prepareRestart(runner, l, "r1", 3001);
    const started = await prepared.go();
    expect(started.before).toEqual([]);
    expect(started.after).toEqual([expect.objectContaining({ name: "all-3001", status: "online" })]);
    const before = log().length;
    await prepared.stop();
    expect(log().slice(before)).toEqual([`delete ${(old.after[0] as { id?: number }).id ?? 1}`]);
    expect(await pm2.inspect(runner)).toEqual([]);
    expect(await pm2.inspect(runner, 3001)).toEqual([
      expect.objectContaining({ pid: started.after[0]?.pid, status: "online" }),
    ]);
    // Nothing left under that name: nothing deleted, and the program still answers.
    await prepared.stop();
    expect(log().slice(before)).toHaveLength(1);
    await prepared.persist();
    expect(readFileSync(path.join(fake.home, "dump.pm2"), "utf8")).toContain(String(started.after[0]?.pid));
    prepared.close();
  });

  it("a prepared restart does nothing on a partial go followed by EOF", async () => {
    const { fake, runner, l, pm2 } = setup();
    const running = runner.start(script(RESTART_SCRIPT, "all", l.ecosystem("r1"), "wait"));
    running.end("go");
    expect(await running.result).toMatchObject({ code: 0, stdout: "" });
    expect(existsSync(fake.state)).toBe(false);
    await pm2.restart(runner, l, "r1");
  });

  it("a prepared restart closed while PM2's connect hangs exits: nothing lingers on the server", async () => {
    const { l, env } = setup();
    const idle = startUnderSh(script(RESTART_SCRIPT, "all", l.ecosystem("r1"), "wait"), {
      ...env,
      FAKE_PM2_CONNECT: "hang",
    });
    idle.end();
    expect(await idle.result).toMatchObject({ code: 0, stdout: "" });
  });

  it("a restart PM2 never finishes fails at its deadline, prepared or not, naming the wait", async () => {
    const { runner, l, env } = setup();
    const stuck = { ...env, FAKE_PM2_START: "hang" };
    const direct = sh(script(RESTART_SCRIPT, "all", l.ecosystem("r1"), "", 300), "", stuck);
    expect(direct.status).toBe(1);
    expect(direct.stderr).toContain("PM2 did not finish within 0.3s");
    const slow = new Pm2({ name: "all", killTimeout: 1000, start: parseStart("server.js", undefined) });
    expect(slow.restartDeadlineMs).toBe(64_000);
    const prepared = preparedRestart(
      { ...runner, start: (command, onStdout) => startUnderSh(command, stuck, onStdout) },
      script(RESTART_SCRIPT, "all", l.ecosystem("r1"), "wait", 300),
      "r1",
      "starting the app under PM2",
      { name: () => "all", timeoutMs: 300 },
    );
    await expect(prepared.go()).rejects.toThrow(/PM2 did not finish within 0.3s/);
    expect(prepared.alive).toBe(false);
    const stop = sh(script(STOP_SCRIPT, "all", 300), "", { ...env, FAKE_PM2_CONNECT: "hang" });
    expect(stop.status).toBe(1);
    expect(stop.stderr).toContain("PM2 did not finish within 0.3s");
  });

  it("a save PM2 never answers is answered by the program's timer, not awaited forever", async () => {
    const { runner, l, pm2, env } = setup();
    const silent: InteractiveRunner = {
      ...runner,
      start: (command, onStdout) => startUnderSh(command, { ...env, FAKE_PM2_DUMP: "silent" }, onStdout),
    };
    const prepared = pm2.prepareRestart(silent, l, "r1");
    await prepared.go();
    await expect(prepared.persist()).rejects.toThrow(/pm2 save failed: no answer from PM2 within 5s/);
    expect(prepared.alive).toBe(true);
    prepared.close();
  }, 60_000);

  it("persists with a private dump file, even one an older save left readable", async () => {
    const { fake, runner, pm2 } = setup();
    writeFileSync(path.join(fake.home, "dump.pm2"), "old", { mode: 0o644 });
    chmodSync(path.join(fake.home, "dump.pm2"), 0o644);
    await pm2.persist(runner);
    expect(
      execFileSync("stat", ["-c", "%a", path.join(fake.home, "dump.pm2")], { encoding: "utf8" }).trim(),
    ).toBe("600");
  });

  it("says so when pm2 is not on the non-interactive PATH", () => {
    const l = layout("/srv/x");
    const result = sh(script(RESTART_SCRIPT, "api", l.ecosystem("r1")), "", {
      ...process.env,
      PATH: binDirWithout(path.join(tmp("no-pm2"), "bin"), ["pm2"]),
    });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain("pm2 is not installed");
  });

  it("judges started instances: all online, none old, none restarted or replaced", () => {
    const p = (pid: number, restarts = 0, status = "online") => ({ name: "a", pid, status, restarts });
    expect(processProblem([p(2), p(3)], [p(2), p(3)], [1])).toBeUndefined();
    expect(processProblem([], [p(2)], [])).toMatch(/does not list/);
    expect(processProblem([p(2), p(3, 0, "errored")], [p(2), p(3)], [])).toMatch(/errored/);
    expect(processProblem([p(1)], [p(1)], [1])).toMatch(/old process/);
    expect(processProblem([p(2), p(3, 2)], [p(2), p(3)], [])).toMatch(/restarted 2 time/);
    expect(processProblem([p(2), p(4)], [p(2), p(3)], [])).toMatch(/replaced/);
    expect(processProblem([p(2)], [p(2), p(3)], [])).toMatch(/1 of 2 instance/);
  });

  it("tells how long the youngest started instance had been up, by the server's clock", () => {
    const p = (startedAt?: number) => ({ name: "a", pid: 1, status: "online", restarts: 0, startedAt });
    expect(uptimeAtStart({ before: [], after: [p(1000), p(1030)], serverNow: 1100 })).toBe(70);
    expect(uptimeAtStart({ before: [], after: [p(1000)] })).toBe(0);
    expect(uptimeAtStart({ before: [], after: [p(1000), p()], serverNow: 1100 })).toBe(0);
    expect(uptimeAtStart({ before: [], after: [p(2000)], serverNow: 1100 })).toBe(0);
  });
});

describe("ShellCheck reads every remote script", () => {
  const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");
  /** Every shell script file under src/: what ShellCheck reads. */
  const files = readdirSync(src, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith(".sh"));
  /**
   * And each script as it runs: a file with the shell functions it calls (withFunctions) and the
   * Node program it starts (withProgram, whose text is JavaScript, not shell: left out here).
   */
  const modules = import.meta.glob("../../src/**/*.ts", { eager: true });
  const composed = Object.entries(modules).flatMap(([file, exports]) =>
    Object.entries(exports as Record<string, unknown>)
      .filter(([name, value]) => name.endsWith("_SCRIPT") && typeof value === "string")
      .map(([name, value]) => ({
        name: `${path.basename(file)} ${name}`,
        text: (value as string).replace(/^program='(?:[^']|'\\'')*'$/m, "program=node-program"),
      })),
  );

  it("finds the scripts", () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
    expect(composed.length).toBeGreaterThanOrEqual(15);
  });

  it("has no finding in any script file, nor in any script as it runs", () => {
    const dir = tmp("shellcheck");
    const texts = composed.map(({ name, text }, i) => {
      const file = path.join(dir, `${i}-${name.replace(/\W+/g, "-")}.sh`);
      writeFileSync(file, text);
      return file;
    });
    const result = spawnSync(
      "shellcheck",
      ["--shell=sh", "--format=gcc", ...files.map((file) => path.join(src, file)), ...texts],
      { encoding: "utf8" },
    );
    expect(result.error, "shellcheck is not installed (Debian: apt-get install shellcheck)").toBeUndefined();
    expect(result.stdout, result.stdout).toBe("");
    expect(result.status).toBe(0);
  });
});

describe("setup scripts under sh", () => {
  it("adds the key on a line of its own, even after a last line with no newline; twice adds it once", () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "nexus-keys-"));
    mkdirSync(path.join(home, ".ssh"));
    writeFileSync(path.join(home, ".ssh", "authorized_keys"), "ssh-ed25519 BBBB admin");
    const command = installKeyCommand("ssh-ed25519 AAAA nexus@ci");
    for (let i = 0; i < 2; i++) execFileSync("sh", ["-c", command], { env: { ...process.env, HOME: home } });
    expect(readFileSync(path.join(home, ".ssh", "authorized_keys"), "utf8")).toBe(
      "ssh-ed25519 BBBB admin\nssh-ed25519 AAAA nexus@ci\n",
    );
  });
});

describe("the watch's access log read under sh", () => {
  const logLine = (status: number, address = "10.0.0.1:3000") =>
    `1.2.3.4 [07/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" ${status} 2 request_time=0.001 upstream=${address} upstream_status=${status} upstream_time=0.001\n`;
  const ok = (n: number) => logLine(200).repeat(n);
  const tally = (counts: Map<string, { requests: number; failures: number }>) =>
    Object.fromEntries([...counts].map(([k, v]) => [k, `${v.failures}/${v.requests}`]));

  it("under sh: reads after the offset, from the start once rotated, and a missing log as empty", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-log-"));
    const log = path.join(dir, "access.log");
    writeFileSync(log, "one\ntwo\n");
    const sh = (identity: string, offset: number) =>
      parseRead(execFileSync("sh", ["-c", readFromOffset(log, identity, offset)], { encoding: "utf8" }));
    const first = sh("", 4);
    expect(first).toMatchObject({ size: 8, start: 4, data: "two\n", old: "" });
    expect(first.identity).toMatch(/^\d+:\d+$/);
    writeFileSync(log, "3\n");
    expect(sh(first.identity, 8)).toMatchObject({ size: 2, start: 0, data: "3\n" });
    rmSync(log);
    expect(sh(first.identity, 2)).toEqual({ identity: "", size: 0, start: 0, data: "", old: "" });
    // A byte that is not UTF-8 stays one byte: the offset counted on the text matches the file.
    writeFileSync(log, Buffer.from([0x61, 0xff, 0x0a, 0x62, 0x0a]));
    expect(sh("", 0)).toMatchObject({ size: 5, data: "a?\nb\n" });
  });

  it("a rotated log that grew past the old offset between polls is read whole, after the rotated file's end", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-log-"));
    const log = path.join(dir, "access.log");
    writeFileSync(log, ok(3));
    const source = new NginxLogSource(new LocalRunner(), log);
    await source.mark();
    // Between two polls: one more line in the old file, logrotate moves it (same inode), Nginx
    // reopens and the new file outgrows the old offset, a failure in its first bytes.
    appendFileSync(log, logLine(502));
    renameSync(log, `${log}.1`);
    writeFileSync(log, logLine(500) + ok(10));
    expect(tally(await source.poll())).toEqual({ "10.0.0.1:3000": "2/12" });
    expect(tally(await source.poll())).toEqual({});
    // Rotated again, the old file compressed away: the new one is read from its start all the same.
    renameSync(log, `${log}.2`);
    writeFileSync(log, logLine(503) + ok(20));
    expect(tally(await source.poll())).toEqual({ "10.0.0.1:3000": "1/21" });
  }, 20_000);

  it("a log missing when the window starts is one being rotated: the file that appears is read from its start", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-log-"));
    const log = path.join(dir, "access.log");
    const source = new NginxLogSource(new LocalRunner(), log);
    await source.mark();
    expect(tally(await source.poll())).toEqual({});
    writeFileSync(log, logLine(500) + ok(2));
    expect(tally(await source.poll())).toEqual({ "10.0.0.1:3000": "1/3" });
  }, 20_000);
});
