import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { detectPackageManager, type PackageManager } from "../../src/artifact/package-manager.js";
import { installNote } from "../../src/deploy/stage.js";
import { layout } from "../../src/remote/layout.js";
import type { RemoteOp } from "../../src/remote/op.js";
import * as release from "../../src/remote/release.js";
import { binDirWithout } from "../fixtures/path-without.js";

/** The install step under sh with fake package managers: which command runs, and when node_modules is reused. */

const tmp = () => mkdtempSync(path.join(os.tmpdir(), "nexus install "));

/** A fake package manager NAME: logs its arguments, answers --version, creates node_modules as an install would. */
function fakeManager(bin: string, name: string, version: string, log: string): void {
  writeFileSync(
    path.join(bin, name),
    `#!/bin/sh\n[ "$1" = --version ] && { echo ${version}; exit 0; }\necho "${name} $*" >> '${log}'\nmkdir -p node_modules/dep && echo x > node_modules/dep/index.js\n`,
  );
  chmodSync(path.join(bin, name), 0o755);
}

/** A `node` that reports another ABI, as the server's node after an upgrade would. */
function nodeWithAbi(bin: string, abi: string): void {
  const preload = path.join(bin, "abi.cjs");
  writeFileSync(
    preload,
    `Object.defineProperty(process, "versions", { value: { ...process.versions, modules: ${JSON.stringify(abi)} } });\n`,
  );
  writeFileSync(path.join(bin, "node"), `#!/bin/sh\nexec '${process.execPath}' -r '${preload}' "$@"\n`);
  chmodSync(path.join(bin, "node"), 0o755);
}

function server(app: Record<string, string>) {
  const dir = tmp();
  const bin = path.join(dir, "bin");
  mkdirSync(bin);
  const log = path.join(dir, "pm.log");
  const l = layout(path.join(dir, "srv"));
  const appDir = path.join(dir, "app");
  mkdirSync(appDir);
  for (const [file, text] of Object.entries(app)) {
    mkdirSync(path.dirname(path.join(appDir, file)), { recursive: true });
    writeFileSync(path.join(appDir, file), text);
  }
  // No package manager but the fakes, whatever the machine has (corepack, a global pnpm).
  const system = binDirWithout(path.join(dir, "system"), ["npm", "npx", "pnpm", "yarn", "corepack"]);
  const env = { ...process.env, PATH: `${bin}:${system}` };
  let n = 0;
  const run = (op: RemoteOp<unknown>) => {
    const result = spawnSync("sh", ["-c", op.command], { encoding: "utf8", env, timeout: 20_000 });
    return { ...result, parsed: result.status === 0 ? release.parseInstall(result.stdout) : undefined };
  };
  execFileSync("sh", ["-c", release.prepare(l).command]);
  /** Ships the app as a new release and installs it; activates it when it installed. */
  const deploy = (manager: PackageManager | undefined) => {
    n += 1;
    const id = `r${n}`;
    const archive = path.join(l.incoming, `${id}.tar.gz`);
    execFileSync("tar", ["-czf", archive, "-C", appDir, "."]);
    execFileSync("sh", ["-c", release.extract(l, archive, id, sha256File(archive)).command]);
    const result = run(release.install(l, id, manager));
    if (result.status === 0) execFileSync("sh", ["-c", release.activate(l, id).command]);
    return result;
  };
  const calls = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);
  return { dir, bin, log, l, appDir, deploy, calls };
}

function sha256File(file: string): string {
  return execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0] as string;
}

// Each install starts node (and the fakes) a few times: seconds each on a loaded 2-core machine.
describe("install: the reuse key", { timeout: 180_000 }, () => {
  const app = { "package.json": '{"name":"a"}', "package-lock.json": '{"lockfileVersion":3}' };

  it("reuses node_modules when nothing changed; installs afresh when the Node ABI, the lockfile or the manager's version changed, and says why", () => {
    const s = server(app);
    const npm = detectPackageManager({ packageJson: app["package.json"], lockfiles: ["package-lock.json"] });
    fakeManager(s.bin, "npm", "10.0.0", s.log);
    expect(s.deploy(npm).parsed).toEqual({
      result: "installed",
      why: "the first release on this server",
      notes: [],
    });
    expect(s.deploy(npm).parsed?.result).toBe("reused");
    expect(s.calls()).toEqual([`npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error`]);

    // A Node upgrade on the server: another ABI, so native modules built for the old one are not reused.
    nodeWithAbi(s.bin, "999");
    const upgraded = s.deploy(npm).parsed;
    expect(upgraded?.result).toBe("installed");
    expect(upgraded?.why).toMatch(/^Node ABI changed \(\d+ → 999\): native modules must be rebuilt$/);
    expect(s.calls()).toHaveLength(2);
    expect(s.deploy(npm).parsed?.result).toBe("reused");

    writeFileSync(path.join(s.appDir, "package-lock.json"), '{"lockfileVersion":3,"x":1}');
    expect(s.deploy(npm).parsed?.why).toBe("package-lock.json changed");
    writeFileSync(path.join(s.appDir, "package.json"), '{"name":"a","version":"2.0.0"}');
    expect(s.deploy(npm).parsed?.why).toBe("package.json changed");
    fakeManager(s.bin, "npm", "10.1.0", s.log);
    expect(s.deploy(npm).parsed?.why).toBe("npm 10.0.0 → npm 10.1.0");
    expect(s.deploy(npm).parsed?.result).toBe("reused");
    expect(s.calls()).toHaveLength(5);
  });

  it("a current release installed without a key (an older nexus) is not reused", () => {
    const s = server(app);
    const npm = detectPackageManager({ packageJson: app["package.json"], lockfiles: ["package-lock.json"] });
    fakeManager(s.bin, "npm", "10.0.0", s.log);
    s.deploy(npm);
    execFileSync("rm", [path.join(s.l.current, "node_modules", ".nexus-install-key")]);
    expect(s.deploy(npm).parsed?.why).toBe("the current node_modules has no install key");
  });
});

describe("install: package managers", { timeout: 120_000 }, () => {
  it("pnpm installs frozen to pnpm-lock.yaml, production only, and is reused after", () => {
    const files = { "package.json": '{"name":"a"}', "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" };
    const s = server(files);
    fakeManager(s.bin, "pnpm", "9.12.0", s.log);
    const pnpm = detectPackageManager({ packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] });
    expect(s.deploy(pnpm).parsed?.result).toBe("installed");
    expect(s.deploy(pnpm).parsed?.result).toBe("reused");
    expect(s.calls()).toEqual(["pnpm install --frozen-lockfile --prod --prefer-offline --reporter=silent"]);
  });

  it("yarn classic with --frozen-lockfile, berry with --immutable", () => {
    const files = { "package.json": '{"name":"a"}', "yarn.lock": "# yarn lockfile v1\n" };
    const s = server(files);
    fakeManager(s.bin, "yarn", "1.22.22", s.log);
    const classic = detectPackageManager({ packageJson: files["package.json"], lockfiles: ["yarn.lock"] });
    s.deploy(classic);
    const berry = detectPackageManager({
      packageJson: '{"packageManager":"yarn@4.5.0"}',
      lockfiles: ["yarn.lock"],
    });
    writeFileSync(path.join(s.appDir, "package.json"), '{"packageManager":"yarn@4.5.0"}');
    const result = s.deploy(berry).parsed;
    expect(s.calls()).toEqual([
      "yarn install --frozen-lockfile --production --non-interactive --prefer-offline --silent",
      "yarn install --immutable",
    ]);
    // The server's yarn is 1.22.22, the app pins 4.5.0 and there is no corepack to run it: said.
    expect(result?.notes).toEqual(["yarn 1.22.22 on the server; the app pins 4.5.0 (no corepack to run it)"]);
  });

  it("runs the pinned version through corepack when the server's differs", () => {
    const files = { "package.json": '{"packageManager":"pnpm@9.12.0"}', "pnpm-lock.yaml": "x\n" };
    const s = server(files);
    fakeManager(s.bin, "pnpm", "8.0.0", s.log);
    fakeManager(s.bin, "corepack", "0.29.0", s.log);
    const pnpm = detectPackageManager({ packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] });
    expect(s.deploy(pnpm).parsed?.result).toBe("installed");
    expect(s.calls()).toEqual([
      "corepack pnpm@9.12.0 install --frozen-lockfile --prod --prefer-offline --reporter=silent",
    ]);
  });

  it("a package manager the server lacks fails the install with exit 127, naming it", () => {
    const files = { "package.json": '{"name":"a"}', "pnpm-lock.yaml": "x\n" };
    const s = server(files);
    const pnpm = detectPackageManager({ packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] });
    const result = s.deploy(pnpm);
    expect(result.status).toBe(127);
    expect(result.stderr).toContain("pnpm is not installed on this server");
  });

  it("an app without package.json installs nothing", () => {
    const s = server({ "server.js": "" });
    expect(s.deploy(undefined).parsed?.result).toBe("skipped");
  });
});

describe("install: a workspace package", { timeout: 120_000 }, () => {
  const files = {
    "package.json": '{"name":"root","private":true}',
    "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
    "pnpm-workspace.yaml": "packages:\n  - apps/*\n  - packages/*\n",
    "apps/api/package.json": '{"name":"@x/api","dependencies":{"@x/shared":"workspace:*"}}',
    "packages/shared/package.json": '{"name":"@x/shared"}',
  };
  const workspace = { dir: "apps/api", name: "@x/api", dirs: ["apps/api", "packages/shared"] };

  it("installs filtered to the package; reuse links the root's and each package's node_modules; the key holds the workspace", () => {
    const s = server(files);
    // pnpm's layout: the store at the root, the package's links in its own node_modules.
    writeFileSync(
      path.join(s.bin, "pnpm"),
      `#!/bin/sh\n[ "$1" = --version ] && { echo 10.34.9; exit 0; }\necho "pnpm $*" >> '${s.log}'\nmkdir -p node_modules/.pnpm apps/api/node_modules/@x && ln -s ../../../../packages/shared apps/api/node_modules/@x/shared\n`,
    );
    chmodSync(path.join(s.bin, "pnpm"), 0o755);
    const pnpm = detectPackageManager(
      { packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] },
      workspace,
    );
    expect(s.deploy(pnpm).parsed?.result).toBe("installed");
    expect(s.calls()).toEqual([
      "pnpm install --frozen-lockfile --prod --filter @x/api... --prefer-offline --reporter=silent",
    ]);
    expect(s.deploy(pnpm).parsed?.result).toBe("reused");
    const r2 = s.l.release("r2");
    expect(existsSync(path.join(r2, "node_modules", ".pnpm"))).toBe(true);
    expect(readFileSync(path.join(r2, "apps/api/node_modules/@x/shared/package.json"), "utf8")).toContain(
      "@x/shared",
    );

    writeFileSync(
      path.join(s.appDir, "packages/shared/package.json"),
      '{"name":"@x/shared","version":"2.0.0"}',
    );
    expect(s.deploy(pnpm).parsed?.why).toBe("a package.json of the workspace apps/api changed");
    const other = { ...workspace, dir: "apps/web", dirs: ["apps/web"] };
    mkdirSync(path.join(s.appDir, "apps/web"));
    writeFileSync(path.join(s.appDir, "apps/web/package.json"), '{"name":"@x/web"}');
    const web = detectPackageManager(
      { packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] },
      other,
    );
    expect(s.deploy(web).parsed?.why).toBe("the workspace changed (apps/api → apps/web)");
    const whole = detectPackageManager({ packageJson: files["package.json"], lockfiles: ["pnpm-lock.yaml"] });
    expect(s.deploy(whole).parsed?.why).toBe("the workspace changed (apps/web → none)");
    expect(s.calls()).toHaveLength(4);
  });
});

describe("detectPackageManager", () => {
  const detect = (packageJson: string, lockfiles: string[], extra: object = {}) =>
    detectPackageManager({ packageJson, lockfiles, ...extra });

  it("reads packageManager first, then the lockfile; npm without one", () => {
    expect(detect("{}", [])).toMatchObject({ name: "npm" });
    expect(detect("{}", [])?.args[0]).toBe("install");
    expect(detect("{}", ["package-lock.json"])).toMatchObject({ name: "npm", lockfile: "package-lock.json" });
    expect(detect("{}", ["npm-shrinkwrap.json"])?.args[0]).toBe("ci");
    expect(detect("{}", ["pnpm-lock.yaml"])).toMatchObject({ name: "pnpm", lockfile: "pnpm-lock.yaml" });
    expect(detect("{}", ["yarn.lock"])).toMatchObject({ name: "yarn", flavor: "classic" });
    expect(detect("{}", ["yarn.lock"], { yarnLockHead: "__metadata:\n  version: 8\n" })?.flavor).toBe(
      "berry",
    );
    expect(detect("{}", ["yarn.lock"], { yarnrcYml: true })?.flavor).toBe("berry");
    expect(detect('{"packageManager":"yarn@1.22.22"}', ["yarn.lock"])).toMatchObject({
      flavor: "classic",
      pinned: "1.22.22",
    });
    expect(
      detect('{"packageManager":"pnpm@9.12.0+sha512.abc"}', ["pnpm-lock.yaml", "package-lock.json"]),
    ).toMatchObject({
      name: "pnpm",
      pinned: "9.12.0",
      lockfile: "pnpm-lock.yaml",
    });
    expect(detectPackageManager({ lockfiles: ["package-lock.json"] })).toBeUndefined();
  });

  it("refuses what would install something else than was tested, naming why", () => {
    expect(() => detect("{}", ["pnpm-lock.yaml", "package-lock.json"])).toThrow(
      /lockfiles of pnpm and npm \(pnpm-lock\.yaml, package-lock\.json\).*packageManager/,
    );
    expect(() => detect('{"packageManager":"pnpm@9.0.0"}', ["package-lock.json"])).toThrow(
      /names pnpm \("packageManager"\), but the app has no pnpm-lock\.yaml/,
    );
    expect(() => detect('{"packageManager":"bun@1.1.0"}', [])).toThrow(
      /packageManager "bun@1.1.0" is not one/,
    );
    expect(() => detect("{", [])).toThrow(/package.json is not valid JSON/);
  });
});

describe("the install's stage line", () => {
  const npm = detectPackageManager({ packageJson: "{}", lockfiles: ["package-lock.json"] });
  it("says reuse, or the fresh install and why", () => {
    expect(installNote({ result: "reused", notes: [] }, npm)).toMatch(/^node_modules reused/);
    expect(installNote({ result: "installed", why: "Node ABI changed (115 → 127)", notes: [] }, npm)).toBe(
      "fresh install with npm ci: Node ABI changed (115 → 127)",
    );
    expect(installNote({ result: "skipped", notes: [] }, undefined)).toBeUndefined();
  });
});
