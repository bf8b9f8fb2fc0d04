import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { script } from "../../src/remote/op.js";
import { RemoteShell, ShellLost, type ShellTransport, ShellUnavailable } from "../../src/ssh/remote-shell.js";
import { REMOTE_SHELL_SCRIPT } from "../../src/ssh/remote-shell-script.js";

/** The remote shell on a local `sh -s`, as sshd would start it (the command comes after `prefix`). */
function localShell(
  options: { prefix?: string; env?: NodeJS.ProcessEnv; command?: string; startTimeoutMs?: number } = {},
) {
  // Its own process group, as sshd gives a session: a test can kill all of it.
  const child = spawn("sh", ["-c", options.command ?? `${options.prefix ?? ""}exec sh -s`], {
    stdio: ["pipe", "pipe", "pipe"],
    env: options.env ?? process.env,
    detached: true,
  });
  children.push(child);
  child.stdin?.on("error", () => {});
  const transport: ShellTransport = {
    write: (data) => child.stdin?.write(data),
    end: () => child.stdin?.end(),
    onData: (listener) => child.stdout?.on("data", listener),
    onExit: (listener) => child.on("exit", () => listener()),
    onClose: (listener) => child.on("close", () => listener()),
  };
  return {
    child,
    shell: new RemoteShell(transport, "local", { killAfterMs: 500, startTimeoutMs: options.startTimeoutMs }),
  };
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {}
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe("the remote shell", { timeout: 30_000 }, () => {
  it("runs each command as sh -c would, with its exit code, stdout and stderr byte for byte", async () => {
    const { shell } = localShell();
    await expect(shell.run({ command: 'printf %s "$HOME"' })).resolves.toEqual({
      code: 0,
      stdout: process.env.HOME,
      stderr: "",
    });
    await expect(shell.run({ command: "printf 'a\\n\\nb'; printf 'é\\n' >&2; exit 3" })).resolves.toEqual({
      code: 3,
      stdout: "a\n\nb",
      stderr: "é\n",
    });
  });

  it("runs scripts with their positional parameters and stdin, hostile values included", async () => {
    const { shell } = localShell();
    const hostile = ["it's", "$(touch /tmp/nexus-pwned)", "a\nb", "", "*", "--"];
    const result = await shell.run({
      command: script('for a in "$@"; do printf "[%s]" "$a"; done; cat', ...hostile),
      stdin: "in'put\n$HOME\n",
    });
    expect(result.stdout).toBe(`${hostile.map((a) => `[${a}]`).join("")}in'put\n$HOME\n`);
    expect(existsSync("/tmp/nexus-pwned")).toBe(false);
  });

  it("runs commands at once, each answer going to its own command", async () => {
    const { shell } = localShell();
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        shell.run({ command: `sleep 0.0${(i * 7) % 10}; echo out${i}; echo err${i} >&2; exit ${i % 5}` }),
      ),
    );
    for (const [i, r] of results.entries())
      expect(r).toEqual({ code: i % 5, stdout: `out${i}\n`, stderr: `err${i}\n` });
  });

  it("runs a sequence in order, in one request: each command once the one before has ended, failed or not", async () => {
    const { shell } = localShell();
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-shell-"));
    const results = await Promise.all(
      shell.runAll([
        { command: `sleep 0.3; echo one >> ${dir}/log; exit 4` },
        { command: `echo two >> ${dir}/log; cat`, stdin: "in two" },
        { command: `echo three >> ${dir}/log; echo err >&2` },
      ]),
    );
    expect(results).toEqual([
      { code: 4, stdout: "", stderr: "" },
      { code: 0, stdout: "in two", stderr: "" },
      { code: 0, stdout: "", stderr: "err\n" },
    ]);
    expect(readFileSync(`${dir}/log`, "utf8")).toBe("one\ntwo\nthree\n");
  });

  it("says the server's $HOME in its hello", async () => {
    const { shell } = localShell();
    await expect(shell.home()).resolves.toBe(process.env.HOME);
  });

  it("carries a large output whole", async () => {
    const { shell } = localShell();
    const result = await shell.run({
      command: "head -c 1500000 /dev/zero | tr '\\0' x; echo; echo done >&2",
    });
    expect(result.stdout.length).toBe(1_500_001);
    expect(result.stderr).toBe("done\n");
  });

  it("skips what the login shell printed before it, and what a leftover child writes after its command", async () => {
    const { shell } = localShell({ prefix: "echo 'Welcome! @nx 1 0 5 0'; " });
    const first = await shell.run({ command: "(sleep 0.3; echo late; echo late >&2) & echo early" });
    expect(first).toEqual({ code: 0, stdout: "early\n", stderr: "" });
    await new Promise((r) => setTimeout(r, 400));
    await expect(shell.run({ command: "echo next" })).resolves.toEqual({
      code: 0,
      stdout: "next\n",
      stderr: "",
    });
  });

  it("stops a command and everything it started when aborted, and when its timeout passes", async () => {
    const { shell } = localShell();
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-shell-"));
    // A child that ignores SIGTERM: only the SIGKILL that follows ends it.
    const command = `sh -c 'trap "" TERM; echo $$ > ${dir}/stubborn; while :; do sleep 0.05; done' & sleep 30 & echo $! > ${dir}/sleeper; wait`;
    const controller = new AbortController();
    const aborted = shell.run({ command, signal: controller.signal });
    await until(() => existsSync(`${dir}/stubborn`) && existsSync(`${dir}/sleeper`));
    const pids = ["stubborn", "sleeper"].map((f) => Number(readFileSync(`${dir}/${f}`, "utf8")));
    controller.abort(new Error("Ctrl-C"));
    await expect(aborted).rejects.toThrow("Ctrl-C");
    expect(await until(() => pids.every((pid) => !alive(pid)))).toBe(true);

    const timed = await shell.run({ command: "sleep 30", timeoutMs: 200 });
    expect(timed.code).toBe(124);
    await expect(shell.run({ command: "echo still here" })).resolves.toMatchObject({
      stdout: "still here\n",
    });
  });

  it("a command aborted before the shell started never runs", async () => {
    const { shell } = localShell({ prefix: "sleep 0.3; " });
    const controller = new AbortController();
    const marker = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-shell-")), "ran");
    const run = shell.run({ command: `touch ${marker}`, signal: controller.signal });
    controller.abort(new Error("Ctrl-C"));
    await expect(run).rejects.toThrow("Ctrl-C");
    await shell.run({ command: "true" });
    expect(existsSync(marker)).toBe(false);
  });

  it("still answers the commands in flight when the shell is killed, and takes no more", async () => {
    const { shell, child } = localShell();
    await shell.run({ command: "true" });
    const running = shell.run({ command: "sleep 0.5; echo finished" });
    await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGKILL");
    await expect(running).resolves.toEqual({ code: 0, stdout: "finished\n", stderr: "" });
    await expect(shell.run({ command: "true" })).rejects.toBeInstanceOf(ShellLost);
    expect(shell.usable).toBe(false);
  });

  it("says the outcome is unknown when the whole shell dies under a command", async () => {
    const { shell, child } = localShell();
    await shell.run({ command: "true" });
    const running = shell.run({ command: "sleep 5" });
    await new Promise((r) => setTimeout(r, 100));
    process.kill(-(child.pid as number), "SIGKILL");
    await expect(running).rejects.toBeInstanceOf(ShellLost);
  });

  it("gives up on a shell that never says hello (a forced command), having sent it nothing", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-shell-"));
    // Like a ForceCommand: whatever was asked, this runs, and keeps what it reads.
    const { shell } = localShell({ command: `cat > ${dir}/received`, startTimeoutMs: 300 });
    await expect(shell.run({ command: "touch /tmp/never" })).rejects.toBeInstanceOf(ShellUnavailable);
    expect(shell.startFailure).toMatch(/did not start within 0.3s/);
    await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync(`${dir}/received`, "utf8")).not.toMatch(/_nx_(run|seq) \d+ /);
  });

  it("is unavailable where it cannot start, and nothing sent to it ran", async () => {
    const { shell } = localShell({ env: { ...process.env, TMPDIR: "/nonexistent/dir" } });
    await expect(shell.run({ command: "true" })).rejects.toBeInstanceOf(ShellUnavailable);
    expect(shell.usable).toBe(false);
  });

  it("reports a command killed by a signal by its shell's exit code", async () => {
    const { shell } = localShell();
    await expect(shell.run({ command: "kill -9 $$" })).resolves.toMatchObject({ code: 137 });
  });

  it("leaves no process or directory behind once its stdin closes", async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-shell-tmp-"));
    const { shell, child } = localShell({ env: { ...process.env, TMPDIR: tmp } });
    await shell.run({ command: "true" });
    shell.close();
    await new Promise((r) => child.on("close", r));
    expect(spawnSync("ls", ["-A", tmp], { encoding: "utf8" }).stdout).toBe("");
  });
});

describe("ShellCheck reads the remote shell", () => {
  it("has no finding", () => {
    const result = spawnSync("shellcheck", ["--shell=sh", "-"], {
      input: `_nx_token=x\n${REMOTE_SHELL_SCRIPT}`,
      encoding: "utf8",
    });
    expect(result.error, "shellcheck is not installed").toBeUndefined();
    expect(result.stdout, result.stdout).toBe("");
  });
});
