import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import {
  copyFixture,
  currentRelease,
  deployDir,
  fleetSnapshot,
  nexus,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";

/** An app with what must not ship next to what must. */
function messyApp(): string {
  const dir = copyFixture("app");
  const write = (rel: string, text = "x\n") => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  };
  write(".gitignore", "coverage/*\n!coverage/keep.txt\n/tmp/\n");
  write("coverage/keep.txt");
  write("coverage/index.html");
  write("coverage/lcov/lcov.info");
  write(".env", "SECRET=do-not-ship\n");
  write(".env.production", "SECRET=do-not-ship-either\n");
  write(".npmrc", "//registry.npmjs.org/:_authToken=do-not-ship\n");
  write("tmp/scratch.txt");
  write("web/.gitignore", "build/\n!keep.log\n");
  write("web/build/out.js");
  write("web/index.js");
  write(".nexusignore", "docs/\n");
  write("docs/notes.md");
  write("server.log");
  write("node_modules/left-pad/index.js");
  return dir;
}

function configFor(app: string, extra: Record<string, unknown> = {}): string {
  return writeConfig({ app: { root: app, ...extra } });
}

async function listed(config: string): Promise<string[]> {
  const run = await nexus(["-c", config, "pack", "--list"]);
  expect(run.exitCode, run.all).toBe(0);
  return run.stdout.split("\n").filter(Boolean);
}

describe("nexus pack: the artifact holds only the app", () => {
  it("honours .gitignore (negation, nested), .nexusignore and the built-in exclusions", async () => {
    const files = await listed(configFor(messyApp()));
    expect(files).toContain("coverage/keep.txt");
    expect(files.filter((f) => f.startsWith("coverage/"))).toEqual(["coverage/keep.txt"]);
    for (const gone of [
      ".env",
      ".env.production",
      ".npmrc",
      "tmp/scratch.txt",
      "web/build/out.js",
      "docs/notes.md",
    ])
      expect(files).not.toContain(gone);
    expect(files.some((f) => f.startsWith("node_modules/") || f.endsWith(".log"))).toBe(false);
    for (const kept of ["server.js", "package.json", "web/index.js", ".gitignore", ".nexusignore"])
      expect(files).toContain(kept);
  });

  it("leaves out every nexus config in the app, not only the one in use, and says so", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-pack-envs-"));
    writeFileSync(path.join(dir, "package.json"), '{"name":"envs","version":"1.0.0"}\n');
    writeFileSync(path.join(dir, "server.js"), "\n");
    // As a new user would: one config per environment, made by init, beside the app.
    for (const [file, extra] of [
      ["deploy/production.json", []],
      ["deploy/staging.json", ["--env", "API_TOKEN=supersecret"]],
    ] as const) {
      const init = await nexus(["init", "-o", file, "--servers", "web1=10.0.0.1", "-y", ...extra], {
        cwd: dir,
      });
      expect(init.exitCode, init.all).toBe(0);
    }
    // The environments convention (an overlay is partial: known by its name).
    writeFileSync(path.join(dir, "deploy.staging.json"), '{"servers":[{"name":"s","host":"10.0.0.9"}]}\n');
    const run = await nexus(["-c", "deploy/production.json", "pack", "--list"], { cwd: dir });
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout.split("\n").filter(Boolean)).toEqual(["package.json", "server.js"]);
    expect(run.stderr).toContain(
      "left out 2 nexus config file(s), whose env values are in plain text: deploy/staging.json, deploy.staging.json",
    );
    expect(run.all).not.toContain("supersecret");
  });

  it("app.include ships an excluded file, with a warning when it looks like a secret; app.exclude leaves more out", async () => {
    const config = configFor(messyApp(), { include: [".env.production"], exclude: ["web/"] });
    const run = await nexus(["-c", config, "pack", "--list"]);
    expect(run.exitCode, run.all).toBe(0);
    const files = run.stdout.split("\n").filter(Boolean);
    expect(files).toContain(".env.production");
    expect(files).not.toContain(".env");
    expect(files.some((f) => f.startsWith("web/"))).toBe(false);
    expect(run.stderr).toMatch(
      /\.env\.production looks like a secret and ships because app\.include names it/,
    );
    expect(run.all).not.toContain("do-not-ship");
  });

  it("-o writes exactly the listed files; --json gives the list, count and size; deploy --dry-run shows them", async () => {
    const config = configFor(messyApp());
    const files = await listed(config);
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-pack-")), "release.tar.gz");
    const write = await nexus(["-c", config, "pack", "-o", out]);
    expect(write.exitCode, write.all).toBe(0);
    expect(write.stderr).toContain(`${files.length} files`);
    const inTar = (await execa("tar", ["-tzf", out])).stdout.split("\n").filter((l) => l && !l.endsWith("/"));
    expect(inTar.sort()).toEqual([...files].sort());

    const json = await nexus(["--json", "-c", config, "pack"]);
    expect(json.exitCode, json.all).toBe(0);
    const lines = json.stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] as string);
    expect(result).toMatchObject({ v: 1, type: "result", command: "pack", count: files.length });
    expect(result.files.map((f: { path: string }) => f.path)).toEqual(files);
    expect(result.bytes).toBe(result.files.reduce((sum: number, f: { size: number }) => sum + f.size, 0));

    const plan = await nexus(["-c", config, "deploy", "--dry-run"]);
    expect(plan.exitCode, plan.all).toBe(0);
    expect(plan.stdout).toMatch(
      new RegExp(`artifact: ${files.length} files, [\\d.]+ (B|KB|MB) before compression`),
    );
  });

  it("a deploy ships the same selection: no .env, no .npmrc, no ignored coverage on the server", async () => {
    const release = uniqueRelease("pack");
    const run = await nexus(["-c", configFor(messyApp()), "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    expect(currentRelease("nexus-alpha")).toBe(release);
    const dir = path.join(deployDir("nexus-alpha"), "releases", release);
    const shipped = (
      await execa("find", [".", "-path", "./node_modules", "-prune", "-o", "-type", "f", "-print"], {
        cwd: dir,
      })
    ).stdout
      .split("\n")
      .map((l) => l.replace(/^\.\//, ""));
    expect(shipped).toContain("coverage/keep.txt");
    for (const gone of [".env", ".npmrc", "coverage/index.html", "docs/notes.md", "server.log"])
      expect(shipped).not.toContain(gone);
  });

  it("an entry script the artifact leaves out stops the dry run and the deploy before any server is touched, naming the rule and app.include", async () => {
    const app = copyFixture("app");
    mkdirSync(path.join(app, "dist"));
    writeFileSync(path.join(app, "dist", "index.js"), 'require("../server.js");\n');
    writeFileSync(path.join(app, ".gitignore"), "dist/\n");
    const config = configFor(app, { start: "dist/index.js" });
    const before = fleetSnapshot();
    for (const args of [
      ["deploy", "--dry-run"],
      ["deploy", "--release-id", uniqueRelease("entry")],
    ]) {
      const run = await nexus(["-c", config, ...args]);
      expect(run.exitCode, `${args.join(" ")}: ${run.all}`).toBe(2);
      expect(run.stderr).toMatch(
        /deploy\.config\.json:\d+:\d+: app\.start: dist\/index\.js is not in the artifact \(`dist\/` in \.gitignore leaves out dist\/\): list it in app\.include/,
      );
      expect(run.all).not.toMatch(/drain|stage/);
    }
    expect(fleetSnapshot()).toBe(before);
    const included = await nexus([
      "-c",
      configFor(app, { start: "dist/index.js", include: ["dist/"] }),
      "deploy",
      "--dry-run",
    ]);
    expect(included.exitCode, included.all).toBe(0);
  });
});
