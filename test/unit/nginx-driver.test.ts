import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NginxBalancer } from "../../src/balancer/nginx/nginx.js";
import {
  describeDrainWait,
  parseWaitDrained,
  WAIT_DRAINED_SCRIPT,
} from "../../src/balancer/nginx/scripts.js";
import type { ServerConfig } from "../../src/config/load.js";
import { script } from "../../src/remote/op.js";
import { procNetTcpAddress } from "../../src/remote/proc-net-tcp.js";
import { LocalRunner } from "../../src/ssh/local-runner.js";
import type { CommandRunner, ExecOptions } from "../../src/ssh/session.js";

// The driver's remote script runs under sh against a temp dir; `true`/`false` stand in for
// `nginx -t`, and a fake master (fakeMaster) for Nginx's: on SIGHUP it starts a "worker process"
// and retires the one before soon after, as Nginx's master does after 100 ms.
const UPSTREAM = `upstream app {
    server 127.0.0.11:3000;
    server 127.0.0.12:3000;
}
`;

function server(name: string, upstream: string): ServerConfig {
  return { name, upstream } as ServerConfig;
}
const a = server("a", "127.0.0.11:3000");
const b = server("b", "127.0.0.12:3000");

let dir: string;
let tmp: string;
let file: string;
let pidFile: string;
let master: ChildProcess;
const savedTmp = process.env.TMPDIR;

/**
 * A stand-in for Nginx's master: it starts one worker, and each SIGHUP starts a new one and,
 * `retireS` later, ends the one before. It writes its pid file once its SIGHUP trap is set (a
 * reload before that would kill it), and runs in a process group of its own, ended as a whole.
 */
/**
 * A fake Nginx master: on SIGHUP a new worker starts and the old one is retired 50 ms later, or,
 * with `retireOn`, only once that file exists (so a test decides when, whatever the machine's load).
 */
function fakeMaster(where: string, retireOn?: string): ChildProcess {
  const retire = retireOn
    ? `while [ ! -e "${retireOn}" ]; do sleep 0.02; done; kill "$old"`
    : `sleep 0.05; kill "$old"`;
  // The worker is a script named "worker process": the barrier finds workers by that title.
  writeFileSync(path.join(where, "worker process"), "while :; do sleep 0.05; done\n");
  writeFileSync(
    path.join(where, "master.sh"),
    `worker=""
hup() { old=$worker; sh "${where}/worker process" & worker=$!; if [ -n "$old" ]; then (${retire}) & fi; }
trap hup HUP
hup
echo $$ > "${pidFile}.tmp" && mv "${pidFile}.tmp" "${pidFile}"
while :; do sleep 0.02; done
`,
  );
  return spawn("sh", [path.join(where, "master.sh")], { stdio: "ignore", detached: true });
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "nexus-nginx-"));
  tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-nginx-tmp-"));
  file = path.join(dir, "upstream.conf");
  pidFile = path.join(dir, "nginx.pid");
  writeFileSync(file, UPSTREAM);
  await startMaster();
  // The script keeps its backup in $TMPDIR: a separate dir, to see that it is removed.
  process.env.TMPDIR = tmp;
});

async function startMaster(retireOn?: string): Promise<void> {
  rmSync(pidFile, { force: true });
  master = fakeMaster(dir, retireOn);
  for (let i = 0; i < 500 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 10));
  if (!existsSync(pidFile)) throw new Error("the fake Nginx master did not start");
}

function stopMaster(): void {
  try {
    process.kill(-(master.pid as number), "SIGKILL"); // the master, its workers and their sleeps
  } catch {}
}

afterEach(() => {
  process.env.TMPDIR = savedTmp;
  if (savedTmp === undefined) delete process.env.TMPDIR;
  stopMaster();
  rmSync(dir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

function balancer(runner: CommandRunner = new LocalRunner(), testCommand = "true"): NginxBalancer {
  return new NginxBalancer(runner, {
    upstreamFile: file,
    testCommand,
    reloadCommand: `kill -HUP "$(cat '${pidFile}')"`,
    pidFile,
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** The fake master's workers now: pids of its children titled "worker process". */
function workerPids(): number[] {
  const out = spawnSync("pgrep", ["-P", String(master.pid), "-f", "worker process"], { encoding: "utf8" });
  return out.stdout.split("\n").filter(Boolean).map(Number);
}

function backupsLeft(): string[] {
  return [
    ...readdirSync(dir).filter(
      (f) => !["upstream.conf", "nginx.pid", "master.sh", "worker process"].includes(f),
    ),
    ...readdirSync(tmp),
  ];
}

/** A runner for run A whose first write is preceded by run B's drain of b (after A has read). */
function drainingBFirst(): { runner: CommandRunner; interleaved: () => boolean } {
  const local = new LocalRunner();
  let interleaved = false;
  const runner: CommandRunner = {
    name: "local",
    run: (command: string, options?: ExecOptions) => local.run(command, options),
    exec: async (command: string, options?: ExecOptions) => {
      if (!interleaved && options?.stdin !== undefined) {
        interleaved = true;
        await balancer().apply({ drain: [b] });
      }
      return local.exec(command, options);
    },
  };
  return { runner, interleaved: () => interleaved };
}

describe("NginxBalancer.apply", () => {
  it("marks a server down and leaves no backup anywhere", async () => {
    await balancer().apply({ drain: [a] });
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM.replace("127.0.0.11:3000;", "127.0.0.11:3000 down;"));
    expect(backupsLeft()).toEqual([]);
  });

  it("restores the file and removes the backup when the config test fails", async () => {
    await expect(
      balancer(new LocalRunner(), "echo 'nginx: [emerg] bad' >&2; false").apply({ drain: [a] }),
    ).rejects.toThrow(/config test failed[\s\S]*\[emerg\] bad/);
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM);
    expect(backupsLeft()).toEqual([]);
  });

  it("names sudo's password prompt with its fix", async () => {
    const error = await balancer(new LocalRunner(), "echo 'sudo: a password is required' >&2; false")
      .apply({ drain: [a] })
      .catch((e: Error) => e);
    expect(String(error)).toMatch(/NOPASSWD/);
  });

  it("keeps the edit of a run that wrote between this run's read and write", async () => {
    // Run B drains b after run A has read the file and before A writes: A must redo its edit
    // on B's version instead of writing back the file it read.
    const { runner: runnerA, interleaved } = drainingBFirst();
    await balancer(runnerA).apply({ drain: [a] });
    expect(interleaved()).toBe(true);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("server 127.0.0.11:3000 down;");
    expect(text).toContain("server 127.0.0.12:3000 down;");
    expect(backupsLeft()).toEqual([]);
  });

  it("a drain that another run's drain has made a capacity breach is refused, not redone", async () => {
    // The guard of run A saw a and b in rotation (minimum 1): draining a left b. Run B drains b
    // between A's read and write: redoing A's edit would leave nothing in rotation.
    const { runner: runnerA, interleaved } = drainingBFirst();
    await expect(
      balancer(runnerA).apply({ drain: [a], keepInRotation: { servers: [a, b], min: 1 } }),
    ).rejects.toThrow(
      /capacity guard: another command changed .* draining a now would leave 0 server\(s\) in rotation \(minimum 1\)/,
    );
    expect(interleaved()).toBe(true);
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM.replace("12:3000;", "12:3000 down;"));
    // Without the interleaving, the same drain goes through.
    await balancer().apply({ enable: [b] });
    await balancer().apply({ drain: [a], keepInRotation: { servers: [a, b], min: 1 } });
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM.replace("11:3000;", "11:3000 down;"));
  });

  it("edits from the file as it last read or wrote it: one round trip (no read) per later change", async () => {
    const runs: string[] = [];
    const local = new LocalRunner();
    const runner: CommandRunner = {
      name: "local",
      run: (command, options) => {
        runs.push(command);
        return local.run(command, options);
      },
      exec: (command, options) => local.exec(command, options),
    };
    const nginx = balancer(runner);
    await nginx.apply({ drain: [a] });
    expect(runs).toHaveLength(1); // the first change reads the file
    await nginx.apply({ enable: [a], drain: [b] });
    await nginx.apply({ enable: [b] });
    expect(runs).toHaveLength(1);
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM);
  });

  it("a copy made stale by another run is caught: its edit is kept, and a change that looks done is checked", async () => {
    const nginx = balancer();
    await nginx.apply({ drain: [a] });
    // Another run enables a and drains b: this driver's copy (a down, b up) is now stale.
    await balancer().apply({ enable: [a], drain: [b] });
    // By the stale copy a is already down: only a fresh read shows it is not.
    await nginx.apply({ drain: [a] });
    expect(readFileSync(file, "utf8")).toBe(
      UPSTREAM.replace("11:3000;", "11:3000 down;").replace("12:3000;", "12:3000 down;"),
    );
    // Another run enables a; a write from this driver's copy (a and b down) would drain a again:
    // the compare-and-swap refuses it and the edit is redone on the file as it is.
    await balancer().apply({ enable: [a] });
    await nginx.apply({ enable: [b] });
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM);
  });

  it("a drain is in force once the old workers stop taking requests; putting back, once a new worker runs", async () => {
    // A master whose old workers retire only once the test lets them: an enable that waited for
    // one would hang (and time out), and a drain that did not would return with one alive.
    const release = path.join(dir, "release-old-workers");
    stopMaster();
    await startMaster(release);
    const nginx = balancer();
    writeFileSync(release, "");
    await nginx.apply({ drain: [a] });
    const [first] = workerPids();
    expect(first).toBeGreaterThan(0);
    // Enable only: done while the old worker still runs (it cannot retire now).
    rmSync(release);
    await nginx.apply({ enable: [a] });
    expect(alive(first as number), "the enable waited for the old worker").toBe(true);
    const second = workerPids().find((pid) => pid !== first);
    expect(second).toBeGreaterThan(0);
    // A drain: done only once every worker from before its reload is gone.
    writeFileSync(release, "");
    await nginx.apply({ drain: [b] });
    expect(alive(second as number), "the drain returned while an old worker still took requests").toBe(false);
  });

  it("with no worker to see (a master without workers, /proc hidden), an enable does not wait for one", async () => {
    // A pid file naming a process with no workers: the "started" barrier has nothing to tell apart.
    const lone = spawn("sleep", ["30"]);
    try {
      writeFileSync(pidFile, `${lone.pid}\n`);
      const nginx = new NginxBalancer(new LocalRunner(), {
        upstreamFile: file,
        testCommand: "true",
        reloadCommand: "true",
        pidFile,
      });
      // Waiting for a new worker would end in "old workers did not hand over within 5s".
      await nginx.apply({ drain: [a] });
      await nginx.apply({ enable: [a] });
      expect(readFileSync(file, "utf8")).toBe(UPSTREAM);
    } finally {
      lone.kill();
    }
  });

  it("reports a file it may not write, with the fix", async () => {
    const runner: CommandRunner = {
      name: "local",
      run: (command, options) => new LocalRunner().run(command, options),
      // The script's own permission check, as when the login user lacks write access.
      exec: (command, options) => new LocalRunner().exec(command.replace("[ ! -w ", "[ -w "), options),
    };
    await expect(balancer(runner).apply({ drain: [a] })).rejects.toThrow(/cannot write[\s\S]*chmod g\+w/);
    expect(readFileSync(file, "utf8")).toBe(UPSTREAM);
  });
});

describe("WAIT_DRAINED_SCRIPT (polls on the balancer host)", () => {
  const waitDrained = async (seconds: number, addresses: string[], ...pids: number[]) =>
    parseWaitDrained(
      await new LocalRunner().run(script(WAIT_DRAINED_SCRIPT, seconds * 1000, addresses.join(" "), ...pids)),
    );

  it("returns once the retired workers have exited, saying when (in ms, to /proc/uptime's 10 ms)", async () => {
    const worker = spawn("sleep", ["3"]);
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    const result = await waitDrained(5, [], worker.pid as number);
    expect(result).toMatchObject({ workers: 0, open: new Map() });
    // No connection to wait for: "closed" at the first poll, long before the worker's exit (the
    // script starts a little after the worker: a margin for a busy machine).
    expect(result.exitedMs).toBeGreaterThanOrEqual(1000);
    expect(result.closedMs).toBeLessThan(result.exitedMs as number);
    await exited;
  });

  it("gives up at its deadline, printing what is still open", async () => {
    const worker = spawn("sleep", ["30"]);
    try {
      const started = Date.now();
      const result = await waitDrained(0.5, [], worker.pid as number);
      // Not a second boundary: the whole 0.5 s (to /proc/uptime's 10 ms), not less.
      expect(Date.now() - started).toBeGreaterThanOrEqual(480);
      expect(result.workers).toBe(1);
      expect(result.exitedMs).toBeUndefined();
    } finally {
      worker.kill();
    }
  });

  it("counts connections per server, not the server's own side of them", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    const busy = procNetTcpAddress(`127.0.0.1:${port}`) as string;
    const idle = procNetTcpAddress("127.0.0.1:9") as string;
    const client = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => client.once("connect", resolve));
    try {
      const open = await waitDrained(0, [busy, idle]);
      expect(open).toMatchObject({
        workers: 0,
        open: new Map([
          [busy, 1],
          [idle, 0],
        ]),
      });
      expect(open.closedMs).toBeUndefined();
      client.destroy();
      expect((await waitDrained(5, [busy, idle])).open.get(busy)).toBe(0);
    } finally {
      client.destroy();
      server.close();
    }
  });

  it("says how many connections to the server were still open at the timeout (a WebSocket's)", async () => {
    const app = net.createServer();
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const { port } = app.address() as net.AddressInfo;
    const client = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => client.once("connect", resolve));
    try {
      expect(await balancer().waitDrained(server("c", `127.0.0.1:${port}`), 0)).toEqual({
        drained: false,
        open: 1,
        connections: 1,
        detail: "1 connection(s) to it still open",
      });
    } finally {
      client.destroy();
      app.close();
    }
  });

  it("a batch's servers are waited for in one remote call", async () => {
    const commands: string[] = [];
    const local = new LocalRunner();
    const runner: CommandRunner = {
      name: "local",
      exec: (command, options) => local.exec(command, options),
      run: (command, options) => {
        commands.push(command);
        return local.run(command, options);
      },
    };
    const results = await Promise.all([a, b].map((s) => balancer(runner).waitDrained(s, 1000)));
    const done = {
      drained: true,
      open: 0,
      connections: 0,
      detail: expect.stringMatching(/^in-flight requests done in \d+\.\d\ds$/),
    };
    expect(results).toEqual([done, done]);
    expect(commands).toHaveLength(2);
    const nginx = balancer(runner);
    commands.length = 0;
    await Promise.all([a, b].map((s) => nginx.waitDrained(s, 1000)));
    expect(commands).toHaveLength(1);
  });
});

describe("describeDrainWait (the drain step's line)", () => {
  const counts = (workers: number, closedMs?: number, exitedMs?: number) => ({
    workers,
    open: new Map<string, number>(),
    closedMs,
    exitedMs,
  });

  it("tells the wait for in-flight requests from the wait for the workers retired by the reload", () => {
    expect(describeDrainWait(counts(0, 150, 620), 0)).toBe(
      "in-flight requests done in 0.15s, the Nginx workers retired by the reload gone in 0.62s",
    );
    // Workers gone first: the connections were all the wait.
    expect(describeDrainWait(counts(0, 150, 40), 0)).toBe("in-flight requests done in 0.15s");
  });

  it("a server that is not an IPv4 address: its connections are not counted, and it says so", () => {
    expect(describeDrainWait(counts(0, 0, 0), undefined)).toBe(
      "its connections not counted (not an IPv4 address)",
    );
  });

  it("at the timeout, says what still holds the server", () => {
    expect(describeDrainWait(counts(0, undefined, 0), 2)).toBe("2 connection(s) to it still open");
    expect(describeDrainWait(counts(1, 300), 0)).toMatch(
      /^in-flight requests done in 0\.30s, 1 Nginx worker\(s\) retired by the reload still running \(.*have not sent their request yet\)$/,
    );
  });
});
