import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { runLocalHook } from "../../src/deploy/hooks.js";
import { COMMAND_EXIT, COMMAND_SCRIPT, envLine } from "../../src/remote/hook.js";
import { layout } from "../../src/remote/layout.js";
import { LOGS_SCRIPT } from "../../src/remote/logs.js";
import { type RemoteOp, script } from "../../src/remote/op.js";
import {
  checkShared,
  linkShared,
  SharedFileMissingError,
  SharedPathUnsafeError,
} from "../../src/remote/shared.js";

/** The remote scripts of shared files, hooks and logs, run for real by `sh` as sshd would. */

function run<T>(op: RemoteOp<T>): T {
  const result = spawnSync("sh", ["-c", op.command], { encoding: "utf8", input: op.stdin ?? "" });
  return op.parse({ code: result.status, stdout: result.stdout, stderr: result.stderr }, "test");
}

function tmp(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `nexus-${prefix} `));
}

/** Runs a command with stdin kept open, as an SSH channel does; `close` ends stdin (Ctrl-C). */
function start(command: string, stdin: string) {
  const child = spawn("sh", ["-c", command], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  child.stdin.write(stdin);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
  return { done, close: () => child.stdin.end(), output: () => stdout };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A config whose app root is `dir`, for the local hooks (afterDeploy, afterFailure). */
function localHookConfig(dir: string, hooks: Record<string, unknown>, more: Record<string, unknown> = {}) {
  return resolveConfig(
    {
      app: { name: "api", root: dir },
      servers: [{ name: "web1", host: "127.0.0.1" }],
      balancer: { host: "web1", upstreamFile: "/etc/nginx/nexus/api-servers.conf" },
      hooks,
      ...more,
    },
    "deploy.config.json",
    dir,
    {},
  );
}

describe("shared files and directories under sh", () => {
  const shared = { files: [".env", "config/production.json"], dirs: ["uploads", "storage/cache"] };

  function deployPath() {
    const l = layout(path.join(tmp("shared"), "app $(touch pwned)"));
    mkdirSync(l.release("r1"), { recursive: true });
    return l;
  }

  it("preflight names the missing files and creates nothing", () => {
    const l = deployPath();
    mkdirSync(l.shared, { recursive: true });
    writeFileSync(path.join(l.shared, ".env"), "A=1\n");
    expect(run(checkShared(l, shared))).toEqual(["config/production.json"]);
    expect(existsSync(path.join(l.shared, "uploads"))).toBe(false);
  });

  it("links files and dirs into the release (dirs created); the artifact's copy is replaced", () => {
    const l = deployPath();
    mkdirSync(path.join(l.shared, "config"), { recursive: true });
    writeFileSync(path.join(l.shared, ".env"), "A=1\n");
    writeFileSync(path.join(l.shared, "config/production.json"), "{}");
    writeFileSync(path.join(l.release("r1"), ".env"), "FROM_ARTIFACT=1\n");
    mkdirSync(path.join(l.release("r1"), "uploads"));
    writeFileSync(path.join(l.release("r1"), "uploads", ".gitkeep"), "");

    const { replaced } = run(linkShared(l, "r1", shared));
    expect(replaced.sort()).toEqual([".env", "uploads"]);
    for (const p of [...shared.files, ...shared.dirs]) {
      const link = path.join(l.release("r1"), p);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(path.join(l.shared, p));
    }
    expect(readFileSync(path.join(l.release("r1"), ".env"), "utf8")).toBe("A=1\n");
    // Written through release r1's link, seen by release r2's: the data outlives releases.
    writeFileSync(path.join(l.release("r1"), "uploads", "a.txt"), "from r1");
    mkdirSync(l.release("r2"));
    run(linkShared(l, "r2", shared));
    expect(readFileSync(path.join(l.release("r2"), "uploads", "a.txt"), "utf8")).toBe("from r1");
    expect(existsSync(path.join(l.shared, "uploads", ".gitkeep"))).toBe(false);
    expect(existsSync(path.join(path.dirname(l.base), "pwned"))).toBe(false);
  });

  it("never removes through a symlink in the release: shared data under a linked dir survives", () => {
    const l = deployPath();
    const release = l.release("r1");
    // The artifact ships `public -> data`; shared.dirs links `data` first, then `public/files`,
    // whose path then runs through public -> data -> shared/data.
    mkdirSync(path.join(release, "data"));
    symlinkSync("data", path.join(release, "public"));
    mkdirSync(path.join(l.shared, "data", "files"), { recursive: true });
    writeFileSync(path.join(l.shared, "data", "files", "avatar.png"), "png");
    let error: unknown;
    try {
      run(linkShared(l, "r1", { files: [], dirs: ["data", "public/files"] }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SharedPathUnsafeError);
    expect((error as Error).message).toContain("public/files: public is a symlink in the release");
    expect(readFileSync(path.join(l.shared, "data", "files", "avatar.png"), "utf8")).toBe("png");
    // Refused before anything was removed or linked.
    expect(lstatSync(path.join(release, "data")).isDirectory()).toBe(true);
  });

  it("a parent that is a real directory resolving into shared/ is refused too", () => {
    const l = deployPath();
    mkdirSync(path.join(l.shared, "cache", "x"), { recursive: true });
    writeFileSync(path.join(l.shared, "cache", "x", "keep"), "1");
    // The release dir itself reached through shared/ (a hand-made layout): never remove there.
    rmSync(l.release("r1"), { recursive: true });
    symlinkSync(path.join(l.shared, "cache"), l.release("r1"));
    expect(() => run(linkShared(l, "r1", { files: [], dirs: ["x"] }))).toThrow(SharedPathUnsafeError);
    expect(readFileSync(path.join(l.shared, "cache", "x", "keep"), "utf8")).toBe("1");
  });

  it("a missing shared file stops staging with the file named", () => {
    const l = deployPath();
    let error: unknown;
    try {
      run(linkShared(l, "r1", { files: ["config/production.json"], dirs: [] }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SharedFileMissingError);
    expect((error as Error).message).toContain(`${l.shared}/config/production.json`);
  });
});

describe("user commands (hooks, exec) under sh", () => {
  it("run in the directory with the env from stdin (never on the command line), with their exit code", async () => {
    const dir = tmp("hook");
    const env = { SECRET: "it's a $ecret `x`\nline two", NEXUS_RELEASE: "r1" };
    const run = start(
      script(COMMAND_SCRIPT, dir, 'pwd; printf "%s" "$SECRET" > secret.txt; echo oops >&2; exit 3', 0),
      envLine(env),
    );
    const result = await run.done;
    expect(result.code).toBe(3);
    expect(result.stdout.trim()).toBe(dir);
    expect(result.stderr).toContain("oops");
    expect(readFileSync(path.join(dir, "secret.txt"), "utf8")).toBe(env.SECRET);
  });

  it("closing stdin (Ctrl-C, a dropped connection) stops the whole process group", async () => {
    const dir = tmp("hook-abort");
    const run = start(script(COMMAND_SCRIPT, dir, "sleep 60 & echo $! > bg.pid; wait", 0), envLine({}));
    await until(
      () =>
        existsSync(path.join(dir, "bg.pid")) && readFileSync(path.join(dir, "bg.pid"), "utf8").endsWith("\n"),
    );
    const pid = Number(readFileSync(path.join(dir, "bg.pid"), "utf8"));
    expect(alive(pid)).toBe(true);
    run.close();
    const result = await run.done;
    expect(result.code).toBe(COMMAND_EXIT.interrupted);
    await until(() => !alive(pid));
  });

  it("a stopped command ends only when its whole group has: one that ignores SIGTERM is killed first", async () => {
    const dir = tmp("hook-stubborn");
    const run = start(
      script(COMMAND_SCRIPT, dir, "sh -c 'trap \"\" TERM; echo $$ > bg.pid; sleep 60' & wait", 500),
      envLine({}),
    );
    const result = await run.done;
    expect(result.code).toBe(COMMAND_EXIT.timeout);
    const pid = Number(readFileSync(path.join(dir, "bg.pid"), "utf8"));
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  }, 60_000);

  it("a local hook (afterDeploy) gets nexus's env and the result, but not the deploy key", async () => {
    const dir = tmp("local-env");
    const config = localHookConfig(
      dir,
      { afterDeploy: "env > env.txt" },
      { ssh: { privateKeyEnv: "CI_KEY" } },
    );
    const result = await runLocalHook("afterDeploy", config, {
      release: "r1",
      result: "success",
      summary: [],
      emit: () => {},
      env: {
        PATH: process.env.PATH,
        CI_KEY: "key",
        NEXUS_SSH_KEY: "key",
        NEXUS_SSH_PASSPHRASE: "p",
        SLACK_URL: "u",
      },
    });
    expect(result).toEqual({ ok: true });
    const env = readFileSync(path.join(dir, "env.txt"), "utf8");
    expect(env).toContain("SLACK_URL=u");
    expect(env).toContain("NEXUS_RESULT=success");
    expect(env).not.toMatch(/^(CI_KEY|NEXUS_SSH_KEY|NEXUS_SSH_PASSPHRASE)=/m);
  });

  it("a local hook (afterFailure) that ignores SIGTERM is killed when it times out", async () => {
    const dir = tmp("local-hook");
    const config = localHookConfig(dir, {
      afterFailure: "trap '' TERM; echo $$ > hook.pid; sleep 60",
      timeout: 300,
    });
    const events: unknown[] = [];
    const result = await runLocalHook("afterFailure", config, {
      release: "r1",
      result: "failed",
      summary: [],
      emit: (event) => events.push(event),
    });
    expect(result).toEqual({ ok: false, reason: "timed out after 0.3s (hooks.timeout)" });
    expect(alive(Number(readFileSync(path.join(dir, "hook.pid"), "utf8")))).toBe(false);
  }, 60_000);

  /**
   * `sleep 600 &` forks a subshell that then execs sleep: on a loaded machine the command can
   * exit, and the runner look, before that exec, and the child is still named sh.
   */
  const leftRunning = (code: number, pid: number) =>
    new RegExp(`nexus: the command exited \\(${code}\\) and left running: ${pid} \\((sleep|sh)\\)`);

  it("the timeout covers the channel: a background child that holds the output is stopped at it, and reported", async () => {
    const dir = tmp("hook-leftover");
    // Lives far longer than this test may take: if the output waited for it, the test would time out.
    const run = start(
      script(COMMAND_SCRIPT, dir, "sleep 600 & echo $! > bg.pid; echo warming", 1000),
      envLine({}),
    );
    const result = await run.done;
    expect(result.code).toBe(COMMAND_EXIT.timeout);
    expect(result.stdout).toBe("warming\n");
    const pid = Number(readFileSync(path.join(dir, "bg.pid"), "utf8"));
    expect(result.stderr).toMatch(leftRunning(0, pid));
    expect(result.stderr).toMatch(
      /timed out after 1000ms: the command had exited \(0\), but what it left running kept its output open/,
    );
    await until(() => !alive(pid));
  }, 20_000);

  it("a background child with its own output does not hold the command: it ends with the shell, the child reported", async () => {
    const dir = tmp("hook-detached");
    const run = start(
      script(COMMAND_SCRIPT, dir, "sleep 600 >/dev/null 2>&1 & echo $! > bg.pid; exit 3", 0),
      envLine({}),
    );
    const result = await run.done;
    const pid = Number(readFileSync(path.join(dir, "bg.pid"), "utf8"));
    try {
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(leftRunning(3, pid));
      expect(alive(pid)).toBe(true);
    } finally {
      process.kill(pid, "SIGKILL");
    }
  }, 20_000);

  it("the timeout stops it with its own exit code", async () => {
    const dir = tmp("hook-timeout");
    const run = start(script(COMMAND_SCRIPT, dir, "sleep 60", 200), envLine({}));
    const result = await run.done;
    expect(result.code).toBe(COMMAND_EXIT.timeout);
    expect(result.stderr).toContain("timed out after 200ms");
  });
});

describe("logs under sh", () => {
  it("prints the last lines, and nothing for a log that does not exist yet", () => {
    const dir = tmp("logs");
    const file = path.join(dir, "app-out.log");
    writeFileSync(file, "1\n2\n3\n4\n");
    const out = spawnSync("sh", ["-c", script(LOGS_SCRIPT, 2, 0, file)], { encoding: "utf8" });
    expect(out.stdout).toBe("3\n4\n");
    const none = spawnSync("sh", ["-c", script(LOGS_SCRIPT, 2, 0, path.join(dir, "none"))], {
      encoding: "utf8",
    });
    expect(none.status).toBe(0);
    expect(none.stdout).toBe("");
  });

  it("follows new lines until stdin closes, then stops tail", async () => {
    const dir = tmp("logs-follow");
    const file = path.join(dir, "app-out.log");
    writeFileSync(file, "old\n");
    const run = start(script(LOGS_SCRIPT, 5, 1, file), "");
    await until(() => run.output().includes("old"));
    writeFileSync(file, "old\nnew line\n");
    await until(() => run.output().includes("new line"));
    run.close();
    expect((await run.done).code).toBe(0);
  });
});
