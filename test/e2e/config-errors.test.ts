import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { nexus, writeConfig } from "./helpers.js";

function configWith(mutate: (data: Record<string, unknown>) => void): string {
  const file = writeConfig();
  const data = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  mutate(data);
  const out = path.join(os.tmpdir(), `nexus-bad-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(out, JSON.stringify(data));
  return out;
}

describe("config errors from the CLI", () => {
  const cases: [string, (d: Record<string, any>) => void, RegExp][] = [
    ["a missing field", (d) => delete d.servers[0].host, /servers\[0\]\.host: is required/],
    [
      "a wrong type",
      (d) => (d.servers[1].port = "22a"),
      /servers\[1\]\.port: expected a number, received "22a"/,
    ],
    [
      "an unknown key",
      (d) => (d.balancer.uptream = "x"),
      /balancer\.uptream: unknown key \(did you mean "upstream"\?\)/,
    ],
    ["a PM2 name that means every app", (d) => (d.pm2.name = "all"), /pm2\.name: "all" means every process/],
    [
      "an app name PM2 reads as an id",
      (d) => (d.app.name = "42"),
      /app\.name: "42" reads as a PM2 process id/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    it(`${what}: names the field, exit 2, no stack trace`, async () => {
      const file = configWith(mutate);
      const run = await nexus(["-c", file, "deploy", "--rolling"]);
      expect(run.exitCode).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain(path.basename(file));
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it("an app.root that is no directory: the field named, exit 2, in pack, deploy --dry-run and deploy alike", async () => {
    const file = configWith((d) => {
      (d.app as Record<string, unknown>).root = "/nonexistent/app";
    });
    for (const args of [["pack", "--list"], ["deploy", "--dry-run"], ["deploy"]]) {
      const run = await nexus(["-c", file, ...args]);
      expect(run.exitCode, `${args.join(" ")}: ${run.all}`).toBe(2);
      expect(run.stderr).toContain("app.root: /nonexistent/app is not a directory");
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("flags the real run refuses are refused by the dry run too; pack -o a directory says so", async () => {
    const file = writeConfig();
    const dryRun = await nexus(["-c", file, "deploy", "--dry-run", "--release-id", "../evil"]);
    expect(dryRun.exitCode).toBe(2);
    expect(dryRun.stderr).toContain('--release-id: "../evil" may hold only');
    const pack = await nexus(["-c", file, "pack", "-o", os.tmpdir()]);
    expect(pack.exitCode).toBe(2);
    expect(pack.stderr).toContain(`--output ${os.tmpdir()}: cannot write it (EISDIR)`);
    expect(pack.stderr).not.toMatch(/\n\s+at /);
  });

  it("a missing config file says how to make one", async () => {
    const run = await nexus(["-c", "/nonexistent/deploy.config.json", "status"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("file not found");
  });

  it("an unknown command suggests the closest", async () => {
    const run = await nexus(["deplyo"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("deploy");
  });
});
