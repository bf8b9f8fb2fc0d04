import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

  it("a JSON syntax error and a schema error point at their line and column, in the terminal and as GitHub annotations", async () => {
    const good = readFileSync(writeConfig(), "utf8");
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-positions-"));
    // Comments and trailing commas are fine (JSON with comments, as editors treat it).
    const commented = path.join(dir, "commented.json");
    writeFileSync(commented, `// the sandbox\n${good.replace(/\n}\s*$/, ",\n}\n")}`);
    const fine = await nexus(["-c", commented, "deploy", "--dry-run"]);
    expect(fine.exitCode, fine.all).toBe(0);

    // A missing comma on line 4.
    const syntax = path.join(dir, "syntax.json");
    const lines = good.split("\n");
    lines[3] = (lines[3] as string).replace(/,$/, "");
    writeFileSync(syntax, lines.join("\n"));
    const broken = await nexus(["-c", syntax, "status"]);
    expect(broken.exitCode).toBe(2);
    expect(broken.stderr).toMatch(/syntax\.json:5:\d+: invalid JSON: expected ","/);

    // servers[1].port: a string, on the line where it is written.
    const typed = path.join(dir, "typed.json");
    const text = good.replace(/("port": )2222/g, (m, key, offset) =>
      offset === good.indexOf('"port": 2222', good.indexOf('"nexus-beta"')) ? `${key}"22a"` : m,
    );
    writeFileSync(typed, text);
    // The field's key: `"port": "22a"`.
    const offset = text.indexOf('"port": "22a"');
    const line = text.slice(0, offset).split("\n").length;
    const column = offset - text.lastIndexOf("\n", offset);
    const wrong = await nexus(["-c", typed, "deploy"]);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain(`typed.json:${line}:${column}: servers[1].port: expected a number`);

    const summary = path.join(dir, "summary.md");
    const github = await nexus(["-c", typed, "deploy"], {
      env: { GITHUB_ACTIONS: "true", GITHUB_WORKSPACE: dir, GITHUB_STEP_SUMMARY: summary },
    });
    expect(github.exitCode).toBe(2);
    expect(github.all).toContain(`::error file=typed.json,line=${line},col=${column},title=nexus::`);
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
