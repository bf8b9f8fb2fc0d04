import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NginxBalancer } from "../../src/balancer/nginx.js";
import {
  parseWaitDrained,
  procNetTcpAddress,
  WAIT_DRAINED_SCRIPT,
} from "../../src/balancer/nginx-scripts.js";
import type { ServerConfig } from "../../src/config/load.js";
import { script } from "../../src/remote/op.js";
import { LocalRunner } from "../../src/ssh/local-runner.js";
import type { CommandRunner, ExecOptions } from "../../src/ssh/session.js";

// The driver's remote script runs under sh against a temp dir; `true`/`false` stand in for
// `nginx -t` and the reload, and pid 1 for a master with no workers (the barrier passes at once).
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
const savedTmp = process.env.TMPDIR;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "nexus-nginx-"));
  tmp = mkdtempSync(path.join(os.tmpdir(), "nexus-nginx-tmp-"));
  file = path.join(dir, "upstream.conf");
  pidFile = path.join(tmp, "pid");
  writeFileSync(file, UPSTREAM);
  writeFileSync(pidFile, "1\n");
  // The script keeps its backup in $TMPDIR: a separate dir, to see that it is removed.
  process.env.TMPDIR = tmp;
});

afterEach(() => {
  process.env.TMPDIR = savedTmp;
  if (savedTmp === undefined) delete process.env.TMPDIR;
  rmSync(dir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

function balancer(runner: CommandRunner = new LocalRunner(), testCommand = "true"): NginxBalancer {
  return new NginxBalancer(runner, { upstreamFile: file, testCommand, reloadCommand: "true", pidFile });
}

function backupsLeft(): string[] {
  return [
    ...readdirSync(dir).filter((f) => f !== "upstream.conf"),
    ...readdirSync(tmp).filter((f) => f !== "pid"),
  ];
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
    const local = new LocalRunner();
    let interleaved = false;
    const runnerA: CommandRunner = {
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
    await balancer(runnerA).apply({ drain: [a] });
    expect(interleaved).toBe(true);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("server 127.0.0.11:3000 down;");
    expect(text).toContain("server 127.0.0.12:3000 down;");
    expect(backupsLeft()).toEqual([]);
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
      await new LocalRunner().run(script(WAIT_DRAINED_SCRIPT, seconds, addresses.join(" "), ...pids)),
    );

  it("returns once the retired workers have exited", async () => {
    const worker = spawn("sleep", ["0.3"]);
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    expect(await waitDrained(5, [], worker.pid as number)).toEqual({ workers: 0, open: new Map() });
    await exited;
  });

  it("gives up at its deadline, printing what is still open", async () => {
    const worker = spawn("sleep", ["30"]);
    try {
      expect((await waitDrained(0, [], worker.pid as number)).workers).toBe(1);
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
      expect(await waitDrained(0, [busy, idle])).toEqual({
        workers: 0,
        open: new Map([
          [busy, 1],
          [idle, 0],
        ]),
      });
      client.destroy();
      expect((await waitDrained(5, [busy, idle])).open.get(busy)).toBe(0);
    } finally {
      client.destroy();
      server.close();
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
    expect(results).toEqual([
      { drained: true, open: 0 },
      { drained: true, open: 0 },
    ]);
    expect(commands).toHaveLength(2);
    const nginx = balancer(runner);
    commands.length = 0;
    await Promise.all([a, b].map((s) => nginx.waitDrained(s, 1000)));
    expect(commands).toHaveLength(1);
  });
});
