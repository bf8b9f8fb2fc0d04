import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { entryFiles } from "../../src/artifact/entries.js";
import { appPackOptions, selectAppFiles } from "../../src/artifact/pack.js";
import { detectPackageManager, yarnFocusAvailable } from "../../src/artifact/package-manager.js";
import {
  fileDependencies,
  inWorkspace,
  pnpmPackages,
  resolveWorkspace,
  type WorkspacePackage,
  workspaceClosure,
  workspacePatterns,
} from "../../src/artifact/workspace.js";
import { ConfigError } from "../../src/config/errors.js";
import { resolveConfig } from "../../src/config/load.js";
import { UsageError } from "../../src/errors.js";
import { layout } from "../../src/remote/layout.js";
import { configProblems } from "../fixtures/config.js";

const FIXTURE = path.resolve(import.meta.dirname, "../../fixtures/app-workspace");

function config(app: Record<string, unknown>) {
  return {
    app: { name: "api", ...app },
    servers: [{ name: "a", host: "10.0.0.1" }],
    balancer: { host: "a", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
  };
}

const pkg = (
  dir: string,
  name: string | undefined,
  dependencies: Record<string, string> = {},
): WorkspacePackage => ({
  dir,
  ...(name ? { name } : {}),
  dependencies,
});

describe("workspace globs", () => {
  it("reads pnpm-workspace.yaml's packages (block and flow), else package.json's workspaces (array or object)", () => {
    expect(
      pnpmPackages(
        'packages:\n  - "apps/*"\n  # tools\n  - \'packages/**\'  # all\n  - "!**/test/**"\ncatalog:\n  x: 1\n',
      ),
    ).toEqual(["apps/*", "packages/**", "!**/test/**"]);
    expect(pnpmPackages("packages: [apps/*, 'libs/*']\n")).toEqual(["apps/*", "libs/*"]);
    expect(pnpmPackages("onlyBuiltDependencies: []\n")).toEqual([]);
    expect(workspacePatterns('{"workspaces":["apps/*"]}')).toEqual(["apps/*"]);
    expect(workspacePatterns('{"workspaces":{"packages":["libs/*"],"nohoist":["**/x"]}}')).toEqual([
      "libs/*",
    ]);
    expect(workspacePatterns('{"workspaces":["apps/*"]}', "packages:\n  - web\n")).toEqual(["web"]);
    expect(workspacePatterns('{"name":"x"}')).toEqual([]);
  });

  it("matches directories as npm and pnpm do: *, **, braces, ./ and a later ! pattern excluding", () => {
    const patterns = ["./apps/*", "packages/**", "{tools,libs}/*", "!packages/**/fixtures/**"];
    expect(inWorkspace(patterns, "apps/api")).toBe(true);
    expect(inWorkspace(patterns, "apps/api/nested")).toBe(false);
    expect(inWorkspace(patterns, "packages/a/b")).toBe(true);
    expect(inWorkspace(patterns, "libs/x")).toBe(true);
    expect(inWorkspace(patterns, "packages/a/fixtures/b")).toBe(false);
    expect(inWorkspace(patterns, "apps")).toBe(false);
    expect(inWorkspace(["apps/a.b"], "apps/aXb")).toBe(false);
  });
});

describe("workspaceClosure", () => {
  const packages = [
    pkg("apps/api", "@x/api", { "@x/shared": "workspace:*", express: "^4.0.0", ui: "npm:@x/ui@1" }),
    pkg("apps/web", "@x/web", { "@x/ui": "workspace:^" }),
    pkg("packages/shared", "@x/shared", { "@x/util": "1.0.0", renamed: "workspace:@x/log@*" }),
    pkg("packages/util", "@x/util", { "@x/shared": "workspace:*" }),
    pkg("packages/log", "@x/log", { local: "link:../raw" }),
    pkg("packages/raw", undefined),
    pkg("packages/ui", "@x/ui"),
  ];

  it("follows workspace:, aliases, names and link:/file: paths, transitively, through cycles; not npm: aliases", () => {
    expect(workspaceClosure(packages, "apps/api").map((p) => p.dir)).toEqual([
      "apps/api",
      "packages/log",
      "packages/raw",
      "packages/shared",
      "packages/util",
    ]);
    expect(workspaceClosure(packages, "apps/web").map((p) => p.dir)).toEqual(["apps/web", "packages/ui"]);
    expect(workspaceClosure(packages, "packages/ui").map((p) => p.dir)).toEqual(["packages/ui"]);
  });

  it("names the file: dependencies outside the closure's packages but inside the root", () => {
    const closure = [
      pkg("apps/api", "a", {
        a: "file:vendor/a.tgz",
        b: "file:../../vendor/b.tgz",
        c: "file:../../../outside.tgz",
      }),
      pkg("packages/s", "s", { d: "file:../../apps/api/vendor/d.tgz" }),
    ];
    expect(fileDependencies(closure)).toEqual(["vendor/b.tgz"]);
  });
});

describe("resolveWorkspace on fixtures/app-workspace", () => {
  it("gives the package, its name and its closure: not the unrelated package", () => {
    expect(resolveWorkspace(FIXTURE, "apps/api")).toEqual({
      dir: "apps/api",
      name: "@nexus-fixture/api",
      dirs: ["apps/api", "packages/shared"],
      extras: [],
    });
  });

  it("refuses, naming app.workspace, a missing dir, one with no package.json, one not in the workspaces, a symlink out", () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "nexus-ws-"));
    cpSync(FIXTURE, root, { recursive: true });
    mkdirSync(path.join(root, "scripts", "db"), { recursive: true });
    writeFileSync(path.join(root, "scripts", "db", "package.json"), '{"name":"db"}');
    mkdirSync(path.join(root, "apps", "noname"));
    writeFileSync(path.join(root, "apps", "noname", "package.json"), "{}");
    symlinkSync(os.tmpdir(), path.join(root, "apps", "out"));
    const problem = (dir: string) => {
      try {
        resolveWorkspace(root, dir);
      } catch (error) {
        return (error as Error).message;
      }
      return "resolved";
    };
    expect(problem("apps/nope")).toMatch(/^app\.workspace: apps\/nope is not a directory in app\.root/);
    expect(problem("tools")).toBe("app.workspace: tools holds no package.json");
    expect(problem("scripts/db")).toBe(
      "app.workspace: scripts/db is not one of the root's workspaces (pnpm-workspace.yaml: apps/*, packages/*)",
    );
    expect(problem("apps/noname")).toMatch(/^app\.workspace: apps\/noname\/package\.json has no "name"/);
    expect(problem("apps/out")).toMatch(/^app\.workspace: apps\/out leads outside app\.root/);
    expect(problem("apps/api")).toBe("resolved");
    const plain = mkdtempSync(path.join(os.tmpdir(), "nexus-ws-"));
    mkdirSync(path.join(plain, "api"));
    writeFileSync(path.join(plain, "package.json"), '{"name":"root"}');
    writeFileSync(path.join(plain, "api", "package.json"), '{"name":"api"}');
    expect(() => resolveWorkspace(plain, "api")).toThrow(/is not a workspace root/);
  });
});

describe("resolveWorkspace on an npm workspace", () => {
  it("finds packages named by a plain directory and under **, and links by name", () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "nexus-ws-"));
    const write = (file: string, data: object) => {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), JSON.stringify(data));
    };
    write("package.json", { name: "root", workspaces: ["web", "libs/**", "!libs/old/**"] });
    write("web/package.json", { name: "web", dependencies: { "lib-a": "^1.0.0", react: "18.0.0" } });
    write("libs/group/a/package.json", { name: "lib-a", dependencies: { "lib-old": "1.0.0" } });
    write("libs/old/x/package.json", { name: "lib-old" });
    write("other/package.json", { name: "lib-a-lookalike" });
    expect(resolveWorkspace(root, "web")).toEqual({
      dir: "web",
      name: "web",
      dirs: ["libs/group/a", "web"],
      extras: [],
    });
  });
});

describe("app.workspace in the config", () => {
  it("takes a relative directory (a trailing slash dropped); refuses absolute paths, .., . and empty parts", () => {
    const resolved = resolveConfig(
      config({ root: "repo", workspace: "apps/api/" }),
      "deploy.config.json",
      "/p",
    );
    expect(resolved.app.workspace).toBe("apps/api");
    expect(resolved.app.root).toBe("/p/repo");
    for (const [workspace, message] of [
      ["/srv/api", "app.workspace: must be relative to app.root, not absolute"],
      ["../api", 'app.workspace: must not contain "..", "." or empty parts'],
      ["apps//api", 'app.workspace: must not contain "..", "." or empty parts'],
      [".", 'app.workspace: must not contain "..", "." or empty parts'],
      ["", "app.workspace: must not be empty"],
    ] as const) {
      expect(configProblems(config({ workspace })).join("\n"), workspace).toContain(message);
    }
  });

  it("is checked against the disk where the app is packed: a ConfigError (exit 2) naming the field", () => {
    const bad = resolveConfig(config({ root: FIXTURE, workspace: "packages" }), "deploy.config.json", "/");
    let error: unknown;
    try {
      appPackOptions(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as ConfigError).problems).toEqual(["app.workspace: packages holds no package.json"]);
  });
});

describe("what a workspace package ships", () => {
  it("the root's manifests, the package and the workspace packages it depends on: no other package, no repository file", async () => {
    const resolved = resolveConfig(
      config({ root: FIXTURE, workspace: "apps/api" }),
      "deploy.config.json",
      "/",
    );
    const selection = await selectAppFiles(FIXTURE, appPackOptions(resolved));
    expect(selection.files.map((f) => f.path)).toEqual([
      "apps/api/package.json",
      "apps/api/server.js",
      "package.json",
      "packages/shared/index.js",
      "packages/shared/package.json",
      "packages/shared/vendor/nexus-greeting-1.0.0.tgz",
      "pnpm-lock.yaml",
      "pnpm-workspace.yaml",
    ]);
  });

  it("reads app.start relative to the package: its entry file is the package's", () => {
    const resolved = resolveConfig(
      config({ root: FIXTURE, workspace: "apps/api", start: "script:start" }),
      "deploy.config.json",
      "/",
    );
    expect(entryFiles(resolved)).toEqual([
      { field: 'app.start (the script "start")', file: "apps/api/server.js" },
    ]);
  });

  it("runs the process in the package's directory of each release", () => {
    expect(layout("/srv/api", "apps/api").app("r1")).toBe("/srv/api/releases/r1/apps/api");
    expect(layout("/srv/api").app("r1")).toBe("/srv/api/releases/r1");
  });
});

describe("the workspace-filtered install", () => {
  const workspace = { dir: "apps/api", name: "@x/api", dirs: ["apps/api", "packages/shared"] };
  const json = (packageManager?: string) => JSON.stringify({ name: "root", private: true, packageManager });

  it("builds each package manager's filtered, frozen, production install", () => {
    const npm = detectPackageManager({ packageJson: json(), lockfiles: ["package-lock.json"] }, workspace);
    expect(npm?.args.slice(0, 5)).toEqual([
      "ci",
      "--workspace",
      "@x/api",
      "--include-workspace-root=false",
      "--omit=dev",
    ]);
    expect(npm?.workspace).toEqual(workspace);
    expect(npm?.label).toBe("npm, package-lock.json, workspace apps/api");
    const pnpm = detectPackageManager(
      { packageJson: json("pnpm@10.34.9"), lockfiles: ["pnpm-lock.yaml"] },
      workspace,
    );
    expect(pnpm?.args.slice(0, 5)).toEqual([
      "install",
      "--frozen-lockfile",
      "--prod",
      "--filter",
      "@x/api...",
    ]);
    const classic = detectPackageManager(
      { packageJson: json("yarn@1.22.22"), lockfiles: ["yarn.lock"] },
      workspace,
    );
    expect(classic?.args.slice(0, 3)).toEqual(["install", "--frozen-lockfile", "--production"]);
    const berry = detectPackageManager(
      { packageJson: json("yarn@4.5.0"), lockfiles: ["yarn.lock"] },
      workspace,
    );
    expect(berry?.args).toEqual(["workspaces", "focus", "--production", "@x/api"]);
  });

  it("explains what Yarn 2 and 3 lack (the workspace-tools plugin), and refuses a workspace without a lockfile", () => {
    const files = { packageJson: json("yarn@3.6.4"), lockfiles: ["yarn.lock"], yarnrcYml: true };
    expect(() => detectPackageManager(files, workspace)).toThrow(UsageError);
    expect(() => detectPackageManager(files, workspace)).toThrow(/yarn plugin import workspace-tools/);
    const withPlugin = {
      ...files,
      yarnrcText: "plugins:\n  - path: .yarn/plugins/@yarnpkg/plugin-workspace-tools.cjs\n",
    };
    expect(detectPackageManager(withPlugin, workspace)?.args[0]).toBe("workspaces");
    expect(yarnFocusAvailable(undefined, "yarnPath: .yarn/releases/yarn-4.1.0.cjs\n")).toBe(true);
    expect(yarnFocusAvailable(undefined, "yarnPath: .yarn/releases/yarn-3.6.4.cjs\n")).toBe(false);
    expect(() => detectPackageManager({ packageJson: json(), lockfiles: [] }, workspace)).toThrow(
      /no lockfile/,
    );
  });
});
