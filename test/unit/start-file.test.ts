import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Pm2 } from "../../src/process/pm2/pm2.js";
import { layout } from "../../src/remote/layout.js";
import type { RemoteOp } from "../../src/remote/op.js";
import { parseStart } from "../../src/start/start.js";

/**
 * write-ecosystem.cjs run by `sh` as a server would run it: in a release laid out as npm and
 * pnpm install it, it finds the JS file PM2 must run and writes the ecosystem file with it.
 */

function run<T>(op: RemoteOp<T>): T {
  const r = spawnSync("sh", ["-c", op.command], { encoding: "utf8", input: op.stdin ?? "", timeout: 20_000 });
  return op.parse({ code: r.status, stdout: r.stdout, stderr: r.stderr }, "test");
}

function files(root: string, tree: Record<string, string>): void {
  for (const [file, text] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
}

/** A deploy path with spaces, one release whose package.json depends on `deps`. */
function release(deps: Record<string, string>, tree: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus start file "));
  const l = layout(path.join(dir, "srv"));
  const cwd = l.release("r1");
  files(cwd, { "package.json": JSON.stringify({ name: "app", dependencies: deps }), ...tree });
  const write = (spec: string, packageJson?: string) => {
    const pm2 = new Pm2({ name: "api", killTimeout: 1000, start: parseStart(spec, packageJson) });
    const file = pm2.processFile(l, { release: "r1", cwd, env: { PORT: "3000" } });
    const starts = run(file.write);
    const written = JSON.parse(readFileSync(file.path, "utf8")).apps[0];
    return { starts, written, mode: statSync(file.path).mode & 0o777 };
  };
  return { cwd, write };
}

const NODE_BIN = "#!/usr/bin/env node\nrequire('http');\n";

describe("a workspace package's binary (app.workspace), hoisted to the release's root by npm", () => {
  it("found in the root's node_modules, run from the package's directory; never above the release", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus start file "));
    const l = layout(path.join(dir, "srv"), "apps/api");
    files(l.release("r1"), {
      "package.json": JSON.stringify({ name: "root", workspaces: ["apps/*"] }),
      "apps/api/package.json": JSON.stringify({ name: "api", dependencies: { next: "15.0.0" } }),
      "node_modules/next/package.json": JSON.stringify({ name: "next", bin: { next: "./dist/bin/next" } }),
      "node_modules/next/dist/bin/next": NODE_BIN,
    });
    // Above the release: Node would look there, nexus does not.
    files(path.join(dir, "srv"), {
      "node_modules/tool/package.json": JSON.stringify({ name: "tool", bin: { tool: "t.js" } }),
      "node_modules/tool/t.js": NODE_BIN,
    });
    const write = (spec: string) => {
      const pm2 = new Pm2({ name: "api", killTimeout: 1000, start: parseStart(spec, undefined) });
      const file = pm2.processFile(l, { release: "r1", cwd: l.app("r1"), env: {} });
      return { file, starts: () => run(file.write) };
    };
    const next = write("bin:next start");
    expect(next.starts()).toBe("../../node_modules/next/dist/bin/next");
    expect(JSON.parse(readFileSync(next.file.path, "utf8")).apps[0]).toMatchObject({
      cwd: l.app("r1"),
      script: "../../node_modules/next/dist/bin/next",
    });
    expect(() => write("bin:tool").starts()).toThrow(
      /no installed dependency of the app provides the binary "tool"/,
    );
  });
});

describe("the ecosystem file of a dependency's binary, written on the server", () => {
  it("npm: the JS file named by the dependency's bin (a scoped package, a string bin), 0600", () => {
    const { write } = release(
      { next: "15.0.0", "@nestjs/cli": "10.0.0" },
      {
        "node_modules/next/package.json": JSON.stringify({ name: "next", bin: { next: "./dist/bin/next" } }),
        "node_modules/next/dist/bin/next": NODE_BIN,
        "node_modules/@nestjs/cli/package.json": JSON.stringify({
          name: "@nestjs/cli",
          bin: { nest: "bin/nest.js" },
        }),
        "node_modules/@nestjs/cli/bin/nest.js": NODE_BIN,
      },
    );
    const next = write("bin:next start -p $PORT");
    expect(next.starts).toBe("node_modules/next/dist/bin/next");
    expect(next.written).toMatchObject({
      script: "node_modules/next/dist/bin/next",
      interpreter: "node",
      args: ["start", "-p", "3000"],
    });
    expect(next.mode).toBe(0o600);
    expect(write("bin:nest start").starts).toBe("node_modules/@nestjs/cli/bin/nest.js");
  });

  it("pnpm: never the .bin shell shim, the package's own file through its symlink", () => {
    const { cwd, write } = release(
      { serve: "1.0.0" },
      {
        "node_modules/.pnpm/serve@1.0.0/node_modules/serve/package.json": JSON.stringify({
          name: "serve",
          bin: "cli.js",
        }),
        "node_modules/.pnpm/serve@1.0.0/node_modules/serve/cli.js": NODE_BIN,
        "node_modules/.bin/serve": '#!/bin/sh\nexec node "$basedir/../serve/cli.js" "$@"\n',
      },
    );
    symlinkSync(".pnpm/serve@1.0.0/node_modules/serve", path.join(cwd, "node_modules", "serve"));
    expect(write("bin:serve").starts).toBe("node_modules/serve/cli.js");
  });

  it("a binary of a dependency's dependency, linked into .bin by npm", () => {
    const { cwd, write } = release(
      { framework: "1.0.0" },
      {
        "node_modules/framework/package.json": JSON.stringify({ name: "framework" }),
        "node_modules/tool/package.json": JSON.stringify({ name: "tool", bin: { tool: "run.js" } }),
        "node_modules/tool/run.js": NODE_BIN,
      },
    );
    mkdirSync(path.join(cwd, "node_modules", ".bin"));
    symlinkSync("../tool/run.js", path.join(cwd, "node_modules", ".bin", "tool"));
    expect(write("bin:tool").starts).toBe("node_modules/tool/run.js");
  });

  it("refuses, failing the stage, a binary nobody provides, a shell script, a compiled executable, a file outside", () => {
    const { write } = release(
      { tools: "1.0.0" },
      {
        "node_modules/tools/package.json": JSON.stringify({
          name: "tools",
          bin: { shell: "bin/shell.sh", native: "bin/native", away: "../../../outside.js" },
        }),
        "node_modules/tools/bin/shell.sh": "#!/bin/bash\necho hi\n",
        "node_modules/tools/bin/native": "\u007fELF\u0002\u0001\u0001\u0000\u0000",
      },
    );
    expect(() => write("bin:next start")).toThrow(
      /no installed dependency of the app provides the binary "next" \(looked in the "bin" of tools\): add the package that provides it to "dependencies" \(devDependencies are not installed on the servers\)/,
    );
    expect(() => write("bin:shell")).toThrow(
      /shell \(node_modules\/tools\/bin\/shell.sh\) is a script for \/bin\/bash, not a Node program/,
    );
    expect(() => write("bin:native")).toThrow(
      /native \(node_modules\/tools\/bin\/native\) is a compiled executable/,
    );
    expect(() => write("bin:away")).toThrow(
      /tools's bin "away" \(\.\.\/\.\.\/\.\.\/outside\.js\) points outside the release/,
    );
  });

  it("`node dist/main` runs dist/main.js, as node would", () => {
    const { write } = release({}, { "dist/main.js": "", "lib/index.js": "" });
    const pkg = (start: string) => JSON.stringify({ scripts: { start } });
    expect(write("script:start", pkg("node dist/main --port $PORT"))).toMatchObject({
      starts: "dist/main.js",
      written: { script: "dist/main.js", args: ["--port", "3000"] },
    });
    expect(write("script:start", pkg("node lib")).starts).toBe("lib/index.js");
    expect(() => write("script:start", pkg("node dist/gone"))).toThrow(
      /node dist\/gone: none of dist\/gone, dist\/gone.js, dist\/gone.cjs, dist\/gone.mjs, dist\/gone\/index.js is in the release/,
    );
  });
});
