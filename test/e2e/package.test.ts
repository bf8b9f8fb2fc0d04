import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { currentRelease, SERVERS, uniqueRelease, writeConfig } from "./helpers.js";
import { PROJECT_ROOT } from "./sandbox-env.js";

/**
 * The npm package as a user gets it: `npm pack` (the bundle as committed: test/e2e/bundle.test.ts proves it current), then an
 * install of the tarball into an empty directory with --omit=dev, offline, with an empty npm cache
 * and an unreachable registry: the package has no runtime dependency to fetch (they are in the bundle).
 */
const work = mkdtempSync(path.join(os.tmpdir(), "nexus-package-"));
const installDir = path.join(work, "app");
const npmOffline = [
  "--offline",
  `--cache=${path.join(work, "empty-npm-cache")}`,
  "--registry=http://127.0.0.1:9/",
  "--no-audit",
  "--no-fund",
];
let tarball = "";
let entries: string[] = [];

function installed(args: string[], cwd = installDir) {
  return execa(path.join(installDir, "node_modules", ".bin", "nexus"), args, {
    cwd,
    reject: false,
    all: true,
    env: { CI: "true", NO_COLOR: "1" },
    timeout: 240_000,
  });
}

describe("the npm package (npm pack → npm install --omit=dev --offline → nexus)", () => {
  beforeAll(async () => {
    const pack = await execa("npm", ["pack", "--pack-destination", work, "--json"], {
      cwd: PROJECT_ROOT,
      reject: false,
      all: true,
    });
    expect(pack.exitCode, pack.all).toBe(0);
    const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as [
      { filename: string; files: { path: string }[] },
    ];
    tarball = path.join(work, info.filename);
    entries = info.files.map((f) => f.path).sort();
    await execa("mkdir", ["-p", installDir]);
    const install = await execa("npm", ["install", tarball, "--omit=dev", ...npmOffline], {
      cwd: installDir,
      reject: false,
      all: true,
    });
    expect(install.exitCode, install.all).toBe(0);
  }, 300_000);

  it("ships what runs and nothing else: the bundle, the schemas, LICENSE, README; no source maps, no src", () => {
    expect(entries).toEqual([
      "LICENSE",
      "README.md",
      "bundle/nexus.mjs",
      "config.schema.json",
      "events.schema.json",
      "package.json",
    ]);
    const pkg = JSON.parse(
      readFileSync(path.join(installDir, "node_modules", "nexus-deploy", "package.json"), "utf8"),
    );
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.bin).toEqual({ nexus: "bundle/nexus.mjs" });
    expect(pkg.engines.node).toBe(">=20.18.1");
    expect(pkg.repository.url).toContain("github.com/nexus-deploy/nexus");
    // Only nexus itself was installed.
    const lock = JSON.parse(readFileSync(path.join(installDir, "package-lock.json"), "utf8"));
    expect(Object.keys(lock.packages).filter(Boolean)).toEqual(["node_modules/nexus-deploy"]);
  });

  it("nexus --help and nexus init work from the install", async () => {
    const help = await installed(["--help"]);
    expect(help.exitCode, help.all).toBe(0);
    for (const command of ["deploy", "rollback", "status", "pack", "init", "sandbox"])
      expect(help.stdout).toContain(command);

    const init = await installed(["init", "--servers", "web1=10.0.0.11,web2=10.0.0.12", "-y"]);
    expect(init.exitCode, init.all).toBe(0);
    const config = JSON.parse(readFileSync(path.join(installDir, "deploy.config.json"), "utf8"));
    // $schema points at the installed package's schema, which is there.
    expect(config.$schema).toBe("./node_modules/nexus-deploy/config.schema.json");
    expect(existsSync(path.join(installDir, config.$schema))).toBe(true);
    // The plan checks that app.start is in the artifact: the "app" here is the install directory.
    writeFileSync(path.join(installDir, "server.js"), "// the app\n");
    const plan = await installed(["deploy", "--dry-run"]);
    expect(plan.exitCode, plan.all).toBe(0);
    expect(plan.stdout).toContain("web1, web2");
  });

  it("deploys to the sandbox from the install", async () => {
    const release = uniqueRelease("npm");
    const config = writeConfig();
    const run = await installed(["-c", config, "deploy", "--rolling", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name)).toBe(release);
  });

  it("nexus sandbox says how to get PM2 when it is missing", async () => {
    const dir = path.join(work, "sandbox");
    const run = await installed(["sandbox", "up", "--dir", dir, "--ip-prefix", "127.0.250."]);
    // Had it found a PM2 after all, stop what it started.
    if (run.exitCode === 0) await installed(["sandbox", "down", "--dir", dir]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toContain("npm install -D pm2");
  });
});
