import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { eventsJsonSchema, jsonLineSchema } from "../../src/events/schema.js";
import { currentRelease, fixture, type NexusRun, nexus, uniqueRelease, writeConfig } from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

const SECRET = "s3cr3t-do-not-print";
const ESC = "\x1b";

/** Every stdout line parsed and checked against the --json schema; the failures, if any, named. */
function jsonLines(run: NexusRun) {
  const lines = run.stdout.split("\n").filter((l) => l !== "");
  const bad: string[] = [];
  const events = lines.map((line) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      bad.push(`not JSON: ${line}`);
      return undefined;
    }
    const parsed = jsonLineSchema.safeParse(value);
    if (!parsed.success) bad.push(`${line}\n  ${parsed.error.message}`);
    return parsed.data;
  });
  expect(bad, bad.join("\n")).toEqual([]);
  return events.filter((e) => e !== undefined);
}

/** The CLI as CI runs it: no terminal, CI set, and nothing else asking for or against colour. */
async function asCi(args: string[]): Promise<NexusRun> {
  const env = { ...process.env, CI: "true" } as Record<string, string | undefined>;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  return nexus(args, { replaceEnv: env });
}

describe("--json", () => {
  const config = writeConfig();

  it("events.schema.json is the schema generated from src/events/schema.ts", () => {
    const committed = JSON.parse(readFileSync(path.join(PROJECT_ROOT, "events.schema.json"), "utf8"));
    expect(committed).toEqual(eventsJsonSchema());
  });

  it("a deploy: every stdout line is one event that matches the schema, version 1", async () => {
    const release = uniqueRelease("json");
    const run = await nexus(["--json", "-c", config, "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    const events = jsonLines(run);
    expect(events.every((e) => e.v === 1)).toBe(true);
    const types = new Set(events.map((e) => e.type));
    for (const type of ["begin", "phase", "step", "progress", "summary"]) expect(types).toContain(type);
    expect(events[0]).toMatchObject({ type: "begin", command: "deploy", release });
    const summary = events.at(-1);
    expect(summary).toMatchObject({ type: "summary", outcome: "success", release, exitCode: 0 });
    // Nothing but events on stdout, and nothing on stderr to mix into them.
    expect(run.stderr).toBe("");
    expect(run.all).not.toContain(SECRET);
  });

  it("a failed gate: gate-failed, error and the summary match the schema too", async () => {
    const good = currentRelease("nexus-alpha");
    const run = await nexus([
      "--json",
      "-c",
      writeConfig({ app: { root: fixture("app-unhealthy") }, health: { deadline: "6s" } }),
      "deploy",
      "--release-id",
      uniqueRelease("json-bad"),
    ]);
    expect(run.exitCode, run.all).toBe(1);
    const events = jsonLines(run);
    const types = new Set(events.map((e) => e.type));
    expect(types).toContain("gate-failed");
    expect(events.at(-1)).toMatchObject({ type: "summary", outcome: "failed", exitCode: 1 });
    expect(currentRelease("nexus-alpha")).toBe(good);
  });

  it("status, releases, nginx-config and a dry run: one structured `result` line each", async () => {
    const status = await nexus(["--json", "-c", config, "status"]);
    expect(status.exitCode, status.all).toBe(0);
    const statusResult = jsonLines(status).filter((e) => e.type === "result");
    expect(statusResult).toHaveLength(1);
    expect(statusResult[0]).toMatchObject({ command: "status" });
    const rows = (statusResult[0] as { rows: { server: string; rotation: string }[] }).rows;
    expect(rows.map((r) => r.server)).toEqual(["nexus-alpha", "nexus-beta", "nexus-gamma"]);
    for (const row of rows) expect(row.rotation).toBe("in rotation");

    const releases = await nexus(["--json", "-c", config, "releases"]);
    expect(releases.exitCode, releases.all).toBe(0);
    const releasesResult = jsonLines(releases).find((e) => e.type === "result");
    expect(releasesResult).toMatchObject({ command: "releases" });
    expect((releasesResult as { rows: { mark: string }[] }).rows.some((r) => r.mark === "current")).toBe(
      true,
    );

    const nginx = await nexus(["--json", "-c", config, "nginx-config"]);
    expect(nginx.exitCode, nginx.all).toBe(0);
    expect(jsonLines(nginx)).toEqual([expect.objectContaining({ type: "result", command: "nginx-config" })]);

    const plan = await nexus(["--json", "-c", config, "deploy", "--dry-run"]);
    expect(plan.exitCode, plan.all).toBe(0);
    const planResult = jsonLines(plan).find((e) => e.type === "result");
    expect(planResult).toMatchObject({ command: "plan" });
    expect((planResult as { batches: string[][] }).batches.flat()).toEqual([
      "nexus-alpha",
      "nexus-beta",
      "nexus-gamma",
    ]);
    expect((planResult as { files: number }).files).toBeGreaterThan(0);

    const check = await nexus(["--json", "-c", config, "check"]);
    const checkResult = jsonLines(check).filter((e) => e.type === "result");
    expect(checkResult).toEqual([expect.objectContaining({ command: "check", ok: check.exitCode === 0 })]);

    const haproxy = await nexus(["--json", "-c", config, "haproxy-config"]);
    expect(haproxy.exitCode, haproxy.all).toBe(0);
    expect(jsonLines(haproxy)).toEqual([
      expect.objectContaining({
        type: "result",
        command: "haproxy-config",
        config: expect.stringContaining("backend "),
      }),
    ]);
  });
});

describe("plain output (CI set, no terminal)", () => {
  it("has no ANSI escape, one timestamped line per event, and --verbose shows remote commands with their output, secrets redacted", async () => {
    const info = sandboxInfo();
    // A balancer command that echoes a value which is also an env secret: it must show as ***.
    const config = writeConfig({
      balancer: { reloadCommand: `${info.lb.reloadCommand} && echo token=${SECRET}` },
    });
    const release = uniqueRelease("plain");
    const run = await asCi(["-v", "-c", config, "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).not.toContain(ESC);
    expect(run.all).not.toContain(SECRET);

    const lines = run.stderr.split("\n");
    const table = lines.findIndex((l) => /^server\s+result\s+release/.test(l));
    expect(table).toBeGreaterThan(0);
    for (const line of lines.slice(0, table - 1)) expect(line).toMatch(/^\d\d:\d\d:\d\d /);

    // Each remote command ("$ " first line, "> " the next ones), then its output: stdout as "| ", stderr as "! ".
    expect(run.stderr).toMatch(/^\d\d:\d\d:\d\d nexus-alpha: [$>] .*nginx .* && echo token=\*\*\*/m);
    expect(run.stderr).toMatch(/^\d\d:\d\d:\d\d nexus-alpha: {3}\| token=\*\*\*$/m);
    // One remote shell per server runs every later command ($HOME comes with its hello).
    expect(run.stderr).toMatch(/^\d\d:\d\d:\d\d nexus-beta: \$ exec sh -s {2}# the remote shell/m);
    // Each restart was prepared while its server drained (the PM2 program started with "wait"),
    // and PM2's process list was saved through it: no `pm2 save` CLI call was needed.
    for (const name of ["nexus-alpha", "nexus-beta", "nexus-gamma"])
      expect(run.stderr).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${name}: > .*\\.json wait \\d+$`, "m"));
    expect(run.stderr).not.toContain("pm2 save --force");
    for (const name of ["nexus-alpha", "nexus-beta", "nexus-gamma"])
      expect(currentRelease(name)).toBe(release);
  });

  it("without --verbose: no remote command is shown", async () => {
    const run = await asCi(["-c", writeConfig(), "deploy", "--release-id", uniqueRelease("quiet")]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).not.toContain(ESC);
    expect(run.stderr).not.toMatch(/: \$ /);
  });
});

describe("pretty output (a terminal)", () => {
  /** Runs the CLI under a pseudo-terminal (util-linux `script`), CI unset. */
  async function onTerminal(args: string[], env: Record<string, string> = {}): Promise<string> {
    const vars = { ...process.env, ...env } as Record<string, string | undefined>;
    delete vars.CI;
    delete vars.NO_COLOR;
    delete vars.FORCE_COLOR;
    Object.assign(vars, env);
    // A real width: a pty nobody sized reports 0 columns, and then nexus prints plain lines.
    const command = `stty cols 100 rows 40 && ${["node", path.join(PROJECT_ROOT, "bin", "nexus.js"), ...args].join(" ")}`;
    const result = await execa("script", ["-qec", command, "/dev/null"], {
      reject: false,
      extendEnv: false,
      env: vars,
      timeout: 60_000,
    });
    return result.stdout;
  }

  it.skipIf(!existsSync("/usr/bin/script"))("colours on a terminal; none with NO_COLOR", async () => {
    const args = ["-c", writeConfig(), "drain", "no-such-server"];
    const coloured = await onTerminal(args);
    expect(coloured).toContain("unknown server");
    expect(coloured).toContain(`${ESC}[31m`);
    const plain = await onTerminal(args, { NO_COLOR: "1" });
    expect(plain).toContain("unknown server");
    expect(plain).not.toMatch(new RegExp(`${ESC}\\[\\d+(;\\d+)*m`));
  });
});
