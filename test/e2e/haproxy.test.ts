import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { Agent, request } from "undici";
import { beforeAll, describe, expect, it } from "vitest";
import { parseServersState, parseShowStat } from "../../src/balancer/haproxy/stats.js";
import { haproxyPaths } from "../../src/sandbox/haproxy.js";
import { sandboxHaproxy, writeHaproxyConfig } from "./balancers.js";
import { hostHome, nexus, uniqueRelease } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

const run = promisify(execFile);

function paths() {
  return haproxyPaths(hostHome(sandboxHaproxy().host));
}

/** What HAProxy itself says, straight from its admin socket. */
async function adminState(): Promise<Record<string, { maint: boolean; drain: boolean }>> {
  const { stdout } = await run("sh", [
    "-c",
    `printf 'show servers state ${sandboxHaproxy().backend}\\n' | socat stdio "UNIX-CONNECT:$1"`,
    "sh",
    paths().socket,
  ]);
  return Object.fromEntries(
    parseServersState(stdout).map((s) => [s.server, { maint: s.maint, drain: s.drain }]),
  );
}

/** Each server's current sessions, from HAProxy's `show stat`. */
async function sessions(): Promise<Record<string, number>> {
  const { stdout } = await run("sh", [
    "-c",
    `printf 'show stat ${sandboxHaproxy().backend} 4 -1\\n' | socat stdio "UNIX-CONNECT:$1"`,
    "sh",
    paths().socket,
  ]);
  return Object.fromEntries(parseShowStat(stdout).map((s) => [s.server, s.sessions]));
}

/** A POST through HAProxy whose body is not finished: it stays in flight until `finish`. */
function unfinishedPost(): Promise<{ socket: Socket; finish(): Promise<string> }> {
  const url = new URL(sandboxHaproxy().url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(
        `POST /api/orders HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{`,
      );
      resolve({
        socket,
        finish: () =>
          new Promise<string>((done) => {
            let response = "";
            socket.setEncoding("utf8").on("data", (chunk: string) => {
              response += chunk;
            });
            socket.on("close", () => done(response.split("\r\n")[0] ?? ""));
            socket.write("}");
          }),
      });
    });
    socket.on("error", reject);
  });
}

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`not within 10s: ${what}`);
}

/** GETs through HAProxy on fresh connections: who answered. */
async function throughHaproxy(count: number): Promise<{ status: number; server?: string }[]> {
  const answers: { status: number; server?: string }[] = [];
  for (let i = 0; i < count; i++) {
    const dispatcher = new Agent({ pipelining: 0 });
    try {
      const response = await request(`${sandboxHaproxy().url}/`, { dispatcher, headersTimeout: 5000 });
      const body = (await response.body.json().catch(() => ({}))) as { server?: string };
      answers.push({ status: response.statusCode, server: body.server });
    } finally {
      await dispatcher.close();
    }
  }
  return answers;
}

/** A reload the classic way: a new HAProxy from the same config takes over and the old one leaves (-sf). */
async function restartHaproxy(): Promise<void> {
  const p = paths();
  const old = readFileSync(p.pid, "utf8").trim();
  await run("haproxy", ["-D", "-f", p.conf, "-p", p.pid, "-sf", old]);
  // The old process leaves once its connections are done; the new one answers at once.
  for (let i = 0; i < 100 && readFileSync(p.pid, "utf8").trim() === old; i++) await sleep(50);
  expect(readFileSync(p.pid, "utf8").trim()).not.toBe(old);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("HAProxy driver (runtime API, no reload)", () => {
  const config = writeHaproxyConfig();
  const servers = sandboxInfo().hosts.map((h) => h.name);

  beforeAll(async () => {
    const deploy = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("haproxy")]);
    expect(deploy.exitCode, deploy.all).toBe(0);
  });

  it("drain puts the server in maintenance through the admin socket; enable makes it ready; status reads it live", async () => {
    const conf = readFileSync(paths().conf, "utf8");
    const drain = await nexus(["-c", config, "drain", "nexus-beta"]);
    expect(drain.exitCode, drain.all).toBe(0);
    expect((await adminState())["nexus-beta"]).toEqual({ maint: true, drain: false });
    expect((await adminState())["nexus-alpha"]).toEqual({ maint: false, drain: false });
    // No config edit.
    expect(readFileSync(paths().conf, "utf8")).toBe(conf);

    const answers = await throughHaproxy(30);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => a.server))).toEqual(new Set(["nexus-alpha", "nexus-gamma"]));

    const status = await nexus(["-c", config, "status"]);
    expect(status.stdout).toMatch(/nexus-beta\s+drained/);
    expect(status.stdout).toMatch(/nexus-alpha\s+in rotation/);

    const enable = await nexus(["-c", config, "enable", "nexus-beta"]);
    expect(enable.exitCode, enable.all).toBe(0);
    expect((await adminState())["nexus-beta"]).toEqual({ maint: false, drain: false });
    expect((await throughHaproxy(30)).some((a) => a.server === "nexus-beta")).toBe(true);
  });

  it("a drained server stays drained across an HAProxy restart (the state file nexus keeps)", async () => {
    expect((await nexus(["-c", config, "drain", "nexus-gamma"])).exitCode).toBe(0);
    // nexus saved the runtime state where `load-server-state-from-file` finds it.
    expect(existsSync(paths().state)).toBe(true);
    expect(
      parseServersState(readFileSync(paths().state, "utf8")).find((s) => s.server === "nexus-gamma"),
    ).toMatchObject({
      maint: true,
    });

    await restartHaproxy();
    expect((await adminState())["nexus-gamma"]?.maint).toBe(true);
    const status = await nexus(["-c", config, "status"]);
    expect(status.stdout).toMatch(/nexus-gamma\s+drained/);
    expect((await throughHaproxy(20)).some((a) => a.server === "nexus-gamma")).toBe(false);

    expect((await nexus(["-c", config, "enable", "nexus-gamma"])).exitCode).toBe(0);
    for (const name of servers) expect((await adminState())[name]).toEqual({ maint: false, drain: false });
  });

  it("a reload while a drain waits: the old process's requests in flight are waited for, and maint reaches the new process", async () => {
    // leastconn spreads nine unfinished POSTs over the three servers: beta holds some.
    const posts = await Promise.all(Array.from({ length: 9 }, () => unfinishedPost()));
    try {
      await until("beta has sessions", async () => ((await sessions())["nexus-beta"] ?? 0) > 0);
      let finished = false;
      // Only the requests can end this drain: its timeout outlasts the test's steps on any machine.
      const drain = nexus(["-c", writeHaproxyConfig({}, "120s"), "drain", "nexus-beta"]).finally(() => {
        finished = true;
      });
      // The drain is in the state file, so the new process starts with beta drained.
      await until(
        "the state file has beta drained",
        () =>
          existsSync(paths().state) &&
          !!parseServersState(readFileSync(paths().state, "utf8")).find((s) => s.server === "nexus-beta")
            ?.drain,
      );
      await restartHaproxy();
      // The old process still serves beta's requests (the new one has none): nexus waits for them.
      await sleep(1000);
      expect(finished).toBe(false);
      const answers = await Promise.all(posts.map((post) => post.finish()));
      expect(answers).toEqual(Array(9).fill("HTTP/1.1 201 Created"));
      const result = await drain;
      expect(result.exitCode, result.all).toBe(0);
      expect((await adminState())["nexus-beta"]).toEqual({ maint: true, drain: false });
    } finally {
      for (const post of posts) post.socket.destroy();
      expect((await nexus(["-c", config, "enable", "nexus-beta"])).exitCode).toBe(0);
    }
  });

  it("a backend HAProxy does not have is named, and nothing changes", async () => {
    const wrong = writeHaproxyConfig({});
    const text = JSON.parse(readFileSync(wrong, "utf8"));
    text.balancer[0].backend = "no_such_backend";
    const file = path.join(path.dirname(wrong), "wrong-backend.json");
    await import("node:fs/promises").then((fs) => fs.writeFile(file, JSON.stringify(text)));
    const drain = await nexus(["-c", file, "drain", "nexus-beta"]);
    expect(drain.exitCode).toBe(1);
    expect(drain.stderr).toContain('HAProxy has no backend "no_such_backend" (balancer.backend)');
    expect(drain.stderr).not.toMatch(/\n\s+at /);
    for (const name of servers) expect((await adminState())[name]).toEqual({ maint: false, drain: false });
  });
});
