import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { request } from "undici";
import { describe, expect, it } from "vitest";
import { jsonLineSchema } from "../../src/events/schema.js";
import {
  currentRelease,
  deployDir,
  giveToHostUser,
  hostHome,
  jsonEvents,
  type NexusRun,
  nexus,
  readUpstream,
  releaseOnDisk,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

/**
 * Issue 13 on the sandbox, in as few deploys as possible: a secret from the environment, shared
 * files that outlive releases, hooks, PM2 cluster mode, logs and exec.
 */

const SECRET = `e2e-secret-${Math.random().toString(36).slice(2)}-value`;
const ROTATED = `rotated-${Math.random().toString(36).slice(2)}-value`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const notes = mkdtempSync(path.join(os.tmpdir(), "nexus-e2e-hooks-"));
const notifyLog = path.join(notes, "notify.log");
const summaryFile = path.join(notes, "summary.json");
const MIGRATIONS = ".nexus-e2e-migrations.log";

function appConfig(overrides: { pm2?: object; hooks?: object } = {}): string {
  return writeConfig({
    pm2: {
      env: { FIXTURE_SECRET: { fromEnv: "NEXUS_E2E_SECRET" } },
      instances: 2,
      execMode: "cluster",
      options: { max_memory_restart: "300M" },
      ...overrides.pm2,
    },
    shared: { files: [".env"], dirs: ["uploads"] },
    hooks: {
      beforeRoll: `echo "migrating $NEXUS_RELEASE on $NEXUS_SERVER"; echo "$NEXUS_RELEASE" >> "$HOME/${MIGRATIONS}"`,
      beforeRollOn: "nexus-beta",
      afterStart: 'echo "warming with $FIXTURE_SECRET"',
      afterDeploy: `echo "$NEXUS_RESULT $NEXUS_RELEASE" >> '${notifyLog}'; printf %s "$NEXUS_SUMMARY" > '${summaryFile}'`,
      afterFailure: `echo "$NEXUS_RESULT $NEXUS_RELEASE" >> '${notifyLog}'`,
      timeout: "60s",
      ...overrides.hooks,
    },
  });
}

const runs: NexusRun[] = [];
async function run(args: string[], secret = SECRET): Promise<NexusRun> {
  const result = await nexus(args, { env: { NEXUS_E2E_SECRET: secret } });
  runs.push(result);
  return result;
}

/** Starts the CLI, sends it SIGINT once its output (so far) satisfies `ready`, and waits for it to end. */
async function interruptWhen(args: string[], ready: (output: string) => boolean) {
  const child = execa("node", [path.join(PROJECT_ROOT, "bin", "nexus.js"), ...args], {
    reject: false,
    all: true,
    env: { CI: "true", NO_COLOR: "1", NEXUS_E2E_SECRET: SECRET },
    timeout: 180_000,
  });
  let seen = "";
  let sent = false;
  child.all?.on("data", (chunk: Buffer) => {
    seen += chunk.toString();
    if (!sent && ready(seen)) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  const result = await child;
  const done = {
    exitCode: result.exitCode ?? -1,
    stdout: result.stdout,
    stderr: result.stderr,
    all: result.all ?? "",
  };
  runs.push(done);
  return { ...done, sent };
}

/** Waits (boundedly) for a process to be gone. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function host(name: string) {
  const h = sandboxInfo().hosts.find((x) => x.name === name);
  if (!h) throw new Error(name);
  return h;
}

async function getJson(name: string, pathname: string, method: "GET" | "PUT" = "GET", body?: string) {
  const response = await request(`http://${host(name).appAddress}${pathname}`, {
    method,
    body,
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

function migrations(release: string): number {
  return SERVERS.map((name) => path.join(hostHome(name), MIGRATIONS))
    .filter((file) => existsSync(file))
    .flatMap((file) => readFileSync(file, "utf8").split("\n"))
    .filter((line) => line === release).length;
}

function sharedDir(name: string): string {
  return path.join(deployDir(name), "shared");
}

async function pm2Pids(): Promise<Map<string, string>> {
  const status = await run(["-c", appConfig(), "--json", "status"]);
  const rows = jsonEvents(status.stdout).find((e) => e.type === "result")?.rows as {
    server: string;
    instances: string;
    process: string;
  }[];
  // "2/2 online" and the pids, without the uptimes.
  return new Map(
    rows.map((r) => [
      r.server,
      `${r.instances} ${[...r.process.matchAll(/online pid (\d+)/g)].map((m) => m[1]).join(",")}`,
    ]),
  );
}

describe("the app's life on its servers", () => {
  const r1 = uniqueRelease("life1");
  const r2 = uniqueRelease("crash");
  const r3 = uniqueRelease("nomigrate");
  const r4 = uniqueRelease("life4");
  let writer = "";

  it("a missing shared file stops the deploy in preflight, naming the file and every server", async () => {
    const before = readUpstream();
    const currents = SERVERS.map(currentRelease);
    const missing = await run(["-c", appConfig(), "deploy", "--release-id", r1]);
    expect(missing.exitCode, missing.all).toBe(2);
    for (const name of SERVERS) expect(missing.stderr).toContain(`${name}: ${sharedDir(name)}/.env`);
    expect(readUpstream()).toBe(before);
    expect(SERVERS.map(currentRelease)).toEqual(currents);
    for (const name of SERVERS) expect(releaseOnDisk(name, r1)).toBe(false);
    // nexus check says it too, server by server.
    const check = await run(["-c", appConfig(), "check"]);
    for (const name of SERVERS) expect(check.all).toContain(`${sharedDir(name)}/.env`);
  });

  it("a missing fromEnv variable is a config error before anything is touched, for the commands that write the app's env only", async () => {
    const unset = { env: { NEXUS_E2E_SECRET: "" } };
    // Reading the fleet needs no deploy-time secret.
    const status = await nexus(["-c", appConfig(), "status"], unset);
    expect(status.all).not.toContain("NEXUS_E2E_SECRET");
    expect(status.exitCode, status.all).not.toBe(2);
    for (const name of SERVERS) expect(status.stdout).toContain(name);
    const result = await nexus(["-c", appConfig(), "deploy"], unset);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      "pm2.env.FIXTURE_SECRET: the environment variable NEXUS_E2E_SECRET is empty (deploy writes it into the app's environment",
    );
    const exec = await nexus(["-c", appConfig(), "exec", "--", "true"], unset);
    expect(exec.exitCode).toBe(2);
    expect(exec.stderr).toContain("exec runs the command with the app's environment");
    const config = await nexus(["-c", appConfig(), "config"], unset);
    expect(config.exitCode, config.all).toBe(0);
    expect(config.stdout).toContain('"FIXTURE_SECRET": "(from $NEXUS_E2E_SECRET: empty here)"');
  });

  it("deploys with the secret, shared files, hooks and two cluster instances per server", async () => {
    for (const name of SERVERS) {
      mkdirSync(sharedDir(name), { recursive: true });
      writeFileSync(path.join(sharedDir(name), ".env"), `SHARED_FLAG=${name}\n`);
      // Planted by the test process: handed to the host's login user, as if it had put them there.
      const apps = path.join(hostHome(name), "apps");
      giveToHostUser(
        name,
        apps,
        path.dirname(sharedDir(name)),
        sharedDir(name),
        path.join(sharedDir(name), ".env"),
      );
    }
    const deployed = await run(["-c", appConfig(), "--json", "deploy", "--release-id", r1]);
    expect(deployed.exitCode, deployed.all).toBe(0);
    const events = jsonEvents(deployed.stdout);
    const hooks = events.filter((e) => e.type === "hook");
    expect(hooks.filter((e) => e.hook === "beforeRoll" && e.status === "start").map((e) => e.server)).toEqual(
      ["nexus-beta"],
    );
    expect(hooks.some((e) => e.status === "output" && e.message === `migrating ${r1} on nexus-beta`)).toBe(
      true,
    );
    // The afterStart hook echoes the secret: its output is in the log, masked.
    const warmed = hooks
      .filter((e) => e.hook === "afterStart" && e.status === "output")
      .map((e) => e.message);
    expect(warmed).toHaveLength(3);
    expect(new Set(warmed)).toEqual(new Set(["warming with ***"]));
    // beforeRoll ran before the first drain.
    const firstDrain = events.findIndex((e) => e.type === "step" && e.step === "drain");
    const hookDone = events.findIndex(
      (e) => e.type === "hook" && e.hook === "beforeRoll" && e.status === "done",
    );
    expect(hookDone).toBeGreaterThan(-1);
    expect(hookDone).toBeLessThan(firstDrain);
    expect(migrations(r1)).toBe(1);

    for (const name of SERVERS) {
      const hash = await getJson(name, "/env-hash?name=FIXTURE_SECRET");
      expect(hash.body).toMatchObject({ set: true, sha256: sha256(SECRET), release: r1 });
      const shared = await getJson(name, "/shared");
      expect(shared.body.env).toBe(`SHARED_FLAG=${name}\n`);
      const file = path.join(deployDir(name), ".nexus", "pm2", `${r1}.json`);
      expect(readFileSync(file, "utf8")).toContain(SECRET);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    writer = "nexus-gamma";
    const stored = await getJson(writer, "/uploads/a.txt", "PUT", "written by release one");
    expect(stored.status).toBe(201);
    expect(readFileSync(path.join(sharedDir(writer), "uploads", "a.txt"), "utf8")).toBe(
      "written by release one",
    );

    expect(readFileSync(notifyLog, "utf8")).toBe(`success ${r1}\n`);
    const summary = JSON.parse(readFileSync(summaryFile, "utf8")) as { outcome: string; rows: unknown[] };
    expect(summary.outcome).toBe("success");
    expect(summary.rows).toHaveLength(3);

    const status = await pm2Pids();
    for (const name of SERVERS) expect(status.get(name)).toMatch(/^2\/2 online \d+,\d+$/);
  });

  it("a release where one cluster instance crashes fails its gate and is rolled back", async () => {
    const pidsBefore = await pm2Pids();
    const crashing = await run([
      "-c",
      appConfig({
        pm2: {
          env: { FIXTURE_SECRET: { fromEnv: "NEXUS_E2E_SECRET" }, FIXTURE_CRASH_INSTANCE: "1" },
        },
      }),
      "deploy",
      "--release-id",
      r2,
    ]);
    expect(crashing.exitCode, crashing.all).toBe(1);
    expect(crashing.stderr).toMatch(/nexus-alpha: health gate failed/);
    expect(crashing.stderr).toMatch(/nexus-alpha\s+rolled back\s+\S+/);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(r1);
    expect(migrations(r2)).toBe(1);
    const pidsAfter = await pm2Pids();
    // alpha was restarted onto r1 afresh (two new instances); beta and gamma were never touched.
    expect(pidsAfter.get("nexus-alpha")).toMatch(/^2\/2 online/);
    expect(pidsAfter.get("nexus-alpha")).not.toBe(pidsBefore.get("nexus-alpha"));
    expect(pidsAfter.get("nexus-beta")).toBe(pidsBefore.get("nexus-beta"));
    expect((await getJson(writer, "/uploads/a.txt")).body.content).toBe("written by release one");
  });

  it("a failing beforeRoll drains nothing and removes the staged release", async () => {
    const before = readUpstream();
    const failing = await run([
      "-c",
      appConfig({ hooks: { beforeRoll: "echo 'migration 42 failed' >&2; exit 7" } }),
      "--json",
      "deploy",
      "--release-id",
      r3,
    ]);
    expect(failing.exitCode, failing.all).toBe(1);
    const events = jsonEvents(failing.stdout);
    expect(events.some((e) => e.type === "step" && e.step === "drain")).toBe(false);
    expect(
      events.some((e) => e.type === "hook" && e.status === "output" && e.message === "migration 42 failed"),
    ).toBe(true);
    expect(
      events.some(
        (e) => e.type === "error" && String(e.message).includes("hooks.beforeRoll failed (exit 7)"),
      ),
    ).toBe(true);
    expect(readUpstream()).toBe(before);
    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(r1);
      expect(releaseOnDisk(name, r3)).toBe(false);
    }
    expect(readFileSync(notifyLog, "utf8")).toBe(`success ${r1}\nfailed ${r2}\nfailed ${r3}\n`);
  });

  it("Ctrl-C during beforeRoll stops the hook on the server, drains nothing, exit 130", async () => {
    const before = readUpstream();
    const pidFile = path.join(hostHome("nexus-beta"), "e2e-hook-sleep.pid");
    const release = uniqueRelease("hookint");
    const interrupted = await interruptWhen(
      [
        "-c",
        appConfig({
          hooks: { beforeRoll: `sleep 300 & echo $! > "$HOME/e2e-hook-sleep.pid"; echo started; wait` },
        }),
        "deploy",
        "--release-id",
        release,
      ],
      (output) => output.includes("beforeRoll | started"),
    );
    expect(interrupted.sent, interrupted.all).toBe(true);
    expect(interrupted.exitCode, interrupted.all).toBe(130);
    expect(interrupted.all).not.toMatch(/: drain (ok|FAILED)/);
    expect(await gone(Number(readFileSync(pidFile, "utf8")))).toBe(true);
    expect(readUpstream()).toBe(before);
    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(r1);
      expect(releaseOnDisk(name, release)).toBe(false);
    }
  });

  it("shared files outlive the next deploy and a rollback: release B serves what release A wrote", async () => {
    const deployed = await run(["-c", appConfig(), "--verbose", "deploy", "--release-id", r4]);
    expect(deployed.exitCode, deployed.all).toBe(0);
    expect(migrations(r4)).toBe(1);
    const served = await getJson(writer, "/uploads/a.txt");
    expect(served.body).toMatchObject({ content: "written by release one", release: r4 });
    for (const name of SERVERS)
      expect((await getJson(name, "/shared")).body.env).toBe(`SHARED_FLAG=${name}\n`);

    // --to: the crashing release is the newest before r4 on beta and gamma, where it was staged but never ran.
    const back = await run(["-c", appConfig(), "rollback", "--to", r1]);
    expect(back.exitCode, back.all).toBe(0);
    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(r1);
      const shared = await getJson(name, "/shared");
      expect(shared.body).toMatchObject({ env: `SHARED_FLAG=${name}\n`, release: r1 });
    }
    expect((await getJson(writer, "/uploads/a.txt")).body.content).toBe("written by release one");
  });

  it("restart picks up a changed secret, with the same drain and gate", async () => {
    const restarted = await run(["-v", "-c", appConfig(), "restart", "--rolling"], ROTATED);
    expect(restarted.exitCode, restarted.all).toBe(0);
    expect(restarted.stderr).toMatch(/nexus-alpha: drain ok/);
    for (const name of SERVERS) {
      expect(currentRelease(name)).toBe(r1);
      expect((await getJson(name, "/env-hash?name=FIXTURE_SECRET")).body.sha256).toBe(sha256(ROTATED));
    }
  });

  it("a restart whose new env fails the gate puts the old process file back", async () => {
    const failing = await run(
      [
        "-c",
        appConfig({
          pm2: { env: { FIXTURE_SECRET: { fromEnv: "NEXUS_E2E_SECRET" }, FIXTURE_CRASH_INSTANCE: "0" } },
        }),
        "restart",
      ],
      ROTATED,
    );
    expect(failing.exitCode, failing.all).toBe(1);
    expect(failing.stderr).toMatch(/nexus-alpha\s+rolled back/);
    expect(failing.stderr).toMatch(/nexus-beta\s+not reached/);
    const file = path.join(deployDir("nexus-alpha"), ".nexus", "pm2", `${r1}.json`);
    expect(readFileSync(file, "utf8")).not.toContain("FIXTURE_CRASH_INSTANCE");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    for (const name of SERVERS) {
      expect((await getJson(name, "/env-hash?name=FIXTURE_SECRET")).body.sha256).toBe(sha256(ROTATED));
    }
  });

  it("logs -n 5 shows lines from all three servers; exec -- node -v prints three groups", async () => {
    const logs = await run(["-c", appConfig(), "logs", "-n", "5"]);
    expect(logs.exitCode, logs.all).toBe(0);
    for (const name of SERVERS) expect(logs.stdout).toMatch(new RegExp(`^${name}\\s+\\| \\[app\\]`, "m"));

    // -f follows until Ctrl-C, which also ends the tails on the servers.
    const followed = await interruptWhen(["-c", appConfig(), "logs", "-n", "2", "-f"], (output) =>
      SERVERS.every((name) => new RegExp(`^${name}\\s+\\| `, "m").test(output)),
    );
    expect(followed.sent).toBe(true);
    expect(followed.exitCode, followed.all).toBe(0);
    const tails = () =>
      SERVERS.some(
        (name) =>
          spawnSync("pgrep", ["-f", `tail -n 2 -F -- ${deployDir(name)}/shared/logs`], {
            encoding: "utf8",
          }).stdout.trim() !== "",
      );
    for (let i = 0; i < 100 && tails(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(tails()).toBe(false);

    const exec = await run(["-c", appConfig(), "exec", "--", "node", "-v"]);
    expect(exec.exitCode, exec.all).toBe(0);
    const groups = exec.stdout.split("\n").filter((line) => line.startsWith("── "));
    expect(groups.sort()).toEqual(SERVERS.map((name) => `── ${name} (ok)`));
    expect(exec.stdout.match(/^v\d+\.\d+\.\d+$/gm)).toHaveLength(3);

    // --json: log events and one exec result line, each valid against events.schema.json.
    const jsonLogs = await run(["-c", appConfig(), "--json", "logs", "-n", "1"]);
    const jsonExec = await run(["-c", appConfig(), "--json", "exec", "--", "node", "-v"]);
    for (const line of [...jsonLogs.stdout.split("\n"), ...jsonExec.stdout.split("\n")].filter(Boolean))
      expect(jsonLineSchema.safeParse(JSON.parse(line)).success, line).toBe(true);
    const logEvents = jsonEvents(jsonLogs.stdout).filter((e) => e.type === "log");
    expect(new Set(logEvents.map((e) => e.server))).toEqual(new Set(SERVERS));
    const execResult = jsonEvents(jsonExec.stdout).find((e) => e.type === "result") as {
      servers: { server: string; exitCode: number }[];
    };
    expect(execResult.servers.map((r) => r.exitCode)).toEqual([0, 0, 0]);

    // The user's shell text, run by sh in `current`, with the app's env; a failure anywhere is exit 1.
    const shell = await run([
      "-c",
      appConfig(),
      "exec",
      "--only",
      "nexus-beta",
      "--",
      'ls uploads; test -n "$FIXTURE_SECRET" && exit 3',
    ]);
    expect(shell.exitCode).toBe(1);
    expect(shell.stdout).toContain("── nexus-beta (exit 3)");
  });

  it("the secret is in no output, event, history line or log", async () => {
    const config = await run(["-c", appConfig(), "config"]);
    expect(config.exitCode).toBe(0);
    expect(config.stdout).toContain("*** (from $NEXUS_E2E_SECRET)");
    for (const r of runs) {
      expect(r.all).not.toContain(SECRET);
      expect(r.all).not.toContain(ROTATED);
    }
    for (const name of SERVERS) {
      const dir = deployDir(name);
      for (const file of [
        path.join(dir, ".nexus", "history.jsonl"),
        path.join(dir, "shared", "logs", "app-out.log"),
        path.join(dir, "shared", "logs", "app-error.log"),
      ]) {
        expect(existsSync(file), file).toBe(true);
        expect(readFileSync(file, "utf8")).not.toContain(SECRET);
      }
    }
    expect(readFileSync(summaryFile, "utf8")).not.toContain(SECRET);
  });
});
