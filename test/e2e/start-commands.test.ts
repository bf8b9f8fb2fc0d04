import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Agent, request } from "undici";
import { describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  hostHome,
  hostUser,
  installLines,
  nexus,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

/**
 * Issue 26, start commands on the sandbox: a TypeScript app built locally (`app.build` runs tsc
 * into dist/, which git ignores and `app.include` ships) started by a package script
 * (`script:start`, `FIXTURE_STARTED_BY=script node --enable-source-maps dist/server.js …`: npm,
 * fork mode, drain) and
 * one served by a dependency's binary (`bin:nexus-serve start -p $PORT`, an extensionless JS file
 * as next's is; pnpm, whose .bin entries are shell scripts; cluster mode, 2 instances; surge
 * strategy, so `$PORT` is the second port every other deploy). Each deploys, redeploys with
 * node_modules reused and rolls back (the second with the drain strategy: the fleet ends on
 * app.port, from the process files staging wrote). PM2's processes are the apps' own node
 * processes (what the app reports as its pid, whose parent is PM2's daemon, not npm or a shell),
 * and the SIGINT PM2 sends when a release replaces them reaches the app: it says so in its log.
 */

interface Answer {
  server: string;
  release: string;
  pid: number;
  port: number;
  [key: string]: unknown;
}

/** GETs through the balancer on fresh connections until every server answered (at most 60). */
async function answers(): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < 60 && !SERVERS.every((s) => out.some((a) => a.server === s)); i++) {
    const dispatcher = new Agent({ pipelining: 0 });
    try {
      const response = await request(sandboxInfo().lb.url, { dispatcher, headersTimeout: 5000 });
      const text = await response.body.text();
      expect(response.statusCode, text).toBe(200);
      out.push(JSON.parse(text) as Answer);
    } finally {
      await dispatcher.close();
    }
  }
  for (const server of SERVERS)
    expect(
      out.some((a) => a.server === server),
      server,
    ).toBe(true);
  return out;
}

/** The app's instances as the server's own PM2 lists them: name and pid. */
function pm2Processes(server: string): { name: string; pid: number }[] {
  const home = hostHome(server);
  const list = execFileSync(path.join(sandboxInfo().dir, "bin", "pm2"), ["jlist"], {
    cwd: home,
    env: { ...process.env, HOME: home, PM2_HOME: path.join(home, ".pm2"), PM2_SILENT: "true" },
    encoding: "utf8",
    ...hostUser(server),
  });
  const parsed = JSON.parse(list.slice(list.indexOf("["))) as { name: string; pid: number }[];
  return parsed.filter((p) => /^nexus-app(-\d+)?$/.test(p.name)).map(({ name, pid }) => ({ name, pid }));
}

/** A process's command line, and its parent's. */
function lineage(pid: number): { command: string; parent: string } {
  const cmdline = (p: number | string) =>
    readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  const ppid = readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /s, "")
    .split(" ")[1] as string;
  return { command: cmdline(pid), parent: cmdline(ppid) };
}

/**
 * Every pid the app reports is one PM2 started, a node process whose parent is PM2's daemon:
 * nothing (npm, pnpm, sh) stands between PM2 and the app. Returns PM2's pids per server.
 */
function assertPm2RunsTheApp(seen: Answer[], instances: number): Map<string, number[]> {
  const pids = new Map<string, number[]>();
  for (const server of SERVERS) {
    const listed = pm2Processes(server);
    expect(listed, JSON.stringify(listed)).toHaveLength(instances);
    pids.set(
      server,
      listed.map((p) => p.pid),
    );
    for (const answer of seen.filter((a) => a.server === server)) {
      expect(
        listed.map((p) => p.pid),
        `${server}: the app's pid ${answer.pid}`,
      ).toContain(answer.pid);
    }
    for (const { pid } of listed) {
      const { command, parent } = lineage(pid);
      // PM2 titles its container "node <script>"; a wrapper would be "npm start", "sh -c …".
      expect(command, `pid ${pid}`).toMatch(/^node /);
      expect(parent, `parent of ${pid}`).toMatch(/PM2 .*God Daemon/);
    }
  }
  return pids;
}

/** Each of these pids (a release's processes, now replaced) logged that SIGINT reached it. */
function assertSigintReached(before: Map<string, number[]>, tag: string): void {
  for (const [server, pids] of before) {
    const log = readFileSync(path.join(deployDir(server), "shared", "logs", "app-out.log"), "utf8");
    for (const pid of pids)
      expect(log, `${server} pid ${pid}`).toContain(`[${tag}] SIGINT in pid ${pid}: closing`);
  }
}

async function deploy(config: string, release: string) {
  const run = await nexus(["-c", config, "deploy", "--release-id", release]);
  expect(run.exitCode, run.all).toBe(0);
  for (const server of SERVERS) expect(currentRelease(server)).toBe(release);
  expect(installLines(run.all)).toHaveLength(SERVERS.length);
  return run;
}

describe("an app started by a package script (npm, fork mode)", () => {
  // The recipe "a TypeScript app built locally": tsc (the project's, first on PATH) writes dist/,
  // which the app's .gitignore leaves out and app.include ships.
  const tscOnPath = `PATH=${JSON.stringify(path.join(PROJECT_ROOT, "node_modules", ".bin"))}:"$PATH"`;
  const config = writeConfig({
    app: {
      root: fixture("app-script"),
      start: "script:start",
      build: `${tscOnPath} npm run build`,
      include: ["dist/"],
    },
  });
  let replaced = new Map<string, number[]>();

  it("deploy --dry-run says what PM2 will run", async () => {
    const plan = await nexus(["-c", config, "deploy", "--dry-run"]);
    expect(plan.exitCode, plan.all).toBe(0);
    expect(plan.stdout).toContain(
      `start: the script "start": node --enable-source-maps dist/server.js --greeting 'from a script' --port $PORT: PM2 runs dist/server.js with node, no npm in between; environment FIXTURE_STARTED_BY=script`,
    );
  });

  it("deploys: PM2 runs the script's node command itself, with its options, arguments and environment", async () => {
    const first = uniqueRelease("script1");
    const run = await deploy(config, first);
    for (const line of installLines(run.all)) expect(line).toContain("fresh install with npm ci");
    expect(run.all).toContain('start: the script "start": node --enable-source-maps dist/server.js');
    const seen = await answers();
    for (const answer of seen) {
      // Built output with its source map: a stack trace names the TypeScript source.
      expect(answer).toMatchObject({
        release: first,
        port: 3000,
        startedBy: "script",
        sourceMaps: true,
        stackFile: "src/server.ts",
      });
      expect(answer.greeting).toMatch(/, from a script$/);
    }
    replaced = assertPm2RunsTheApp(seen, 1);
  });

  it("redeploys reusing node_modules; PM2's SIGINT reached the replaced app", async () => {
    const second = uniqueRelease("script2");
    const run = await deploy(config, second);
    for (const line of installLines(run.all)) expect(line).toContain("node_modules reused");
    assertSigintReached(replaced, "app-script");
    replaced = assertPm2RunsTheApp(await answers(), 1);

    const back = await nexus(["-c", config, "rollback"]);
    expect(back.exitCode, back.all).toBe(0);
    expect((await answers()).every((a) => a.release !== second)).toBe(true);
    assertSigintReached(replaced, "app-script");
  });
});

describe("an app served by a dependency's binary (pnpm, cluster mode, surge)", () => {
  const app = {
    app: { root: fixture("app-bin"), start: "bin:nexus-serve start -p $PORT" },
    pm2: { instances: 2, execMode: "cluster" },
  };
  const config = writeConfig({ ...app, rolling: { strategy: "surge", batchSize: 3 } });
  let replaced = new Map<string, number[]>();
  let first = "";

  it("deploys: PM2 clusters the binary's own JS file (not pnpm's .bin shell script) on the surge port", async () => {
    first = uniqueRelease("bin1");
    const run = await deploy(config, first);
    for (const line of installLines(run.all)) {
      expect(line).toContain("fresh install with pnpm install");
      // Found on the server after the install: the package's file, through pnpm's symlink.
      expect(line).toContain("starts node_modules/nexus-serve/bin/nexus-serve");
    }
    // A shell script in .bin, which node could not run and PM2 could not cluster.
    const shim = readFileSync(
      path.join(deployDir("nexus-alpha"), "current", "node_modules", ".bin", "nexus-serve"),
      "utf8",
    );
    expect(shim).toMatch(/^#!\/bin\/sh/);
    const seen = await answers();
    // The surge started it beside the serving process: $PORT is that process's port.
    for (const answer of seen)
      expect(answer).toMatchObject({ release: first, port: 3001, argv: ["start", "-p", "3001"] });
    replaced = assertPm2RunsTheApp(seen, 2);
  });

  it("redeploys reusing node_modules and rolls back; PM2's SIGINT reached each worker", async () => {
    const second = uniqueRelease("bin2");
    const run = await deploy(config, second);
    for (const line of installLines(run.all)) expect(line).toContain("node_modules reused");
    // The second surge: back on app.port.
    for (const answer of await answers()) expect(answer).toMatchObject({ release: second, port: 3000 });
    assertSigintReached(replaced, "nexus-serve");
    replaced = assertPm2RunsTheApp(await answers(), 2);

    // Rolled back by the drain strategy, from the process file staging wrote (binary found there).
    const back = await nexus(["-c", writeConfig(app), "rollback"]);
    expect(back.exitCode, back.all).toBe(0);
    for (const answer of await answers()) expect(answer).toMatchObject({ release: first, port: 3000 });
    assertSigintReached(replaced, "nexus-serve");
    assertPm2RunsTheApp(await answers(), 2);
  });
});

describe("start commands nexus cannot run without a shell", () => {
  it("stop before anything happens, naming app.start (exit 2)", async () => {
    const config = writeConfig({
      app: { root: fixture("app-bin"), start: "bin:nexus-serve start && echo up" },
    });
    const run = await nexus(["-c", config, "deploy", "--dry-run"]);
    expect(run.exitCode, run.all).toBe(2);
    expect(run.stderr).toContain(
      'app.start: "bin:nexus-serve start && echo up" uses `&&` or a background job (`&`), which needs a shell',
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
