import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Agent, request } from "undici";
import { describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  installLines,
  nexus,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

/**
 * Issue 26, workspaces: a package of a pnpm workspace (fixtures/app-workspace, `app.workspace:
 * "apps/api"`, which depends on packages/shared through `workspace:*`) ships with the root's
 * manifests and the package it depends on, nothing else of the repository; installs with pnpm's
 * workspace filter; runs in its own directory; rolls back; and redeploys with node_modules reused.
 * The npm-workspaces twin (fixtures/app-workspace-npm) ships and deploys the same way.
 */

const SHIPPED = [
  "apps/api/package.json",
  "apps/api/server.js",
  "package.json",
  "packages/shared/index.js",
  "packages/shared/package.json",
  "packages/shared/vendor/nexus-greeting-1.0.0.tgz",
];

/** The app's whole answer through the balancer (its greeting and working directory too). */
async function answer(): Promise<{ release?: string; greeting?: string; cwd?: string }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const response = await request(sandboxInfo().lb.url, {
      dispatcher,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    return JSON.parse(await response.body.text());
  } finally {
    await dispatcher.close();
  }
}

for (const { pm, root, lockfile, command, via } of [
  {
    pm: "pnpm",
    root: "app-workspace",
    lockfile: ["pnpm-lock.yaml", "pnpm-workspace.yaml"],
    command: "pnpm install",
    via: "via workspace:*",
  },
  {
    pm: "npm",
    root: "app-workspace-npm",
    lockfile: ["package-lock.json"],
    command: "npm ci",
    via: "via the workspace",
  },
]) {
  describe(`a package of an ${pm} workspace on the sandbox`, () => {
    const config = writeConfig({ app: { root: fixture(root), workspace: "apps/api" } });

    it("ships the package, its workspace dependency and the root's manifests, nothing else", async () => {
      const list = await nexus(["-c", config, "pack", "--list"]);
      expect(list.exitCode, list.all).toBe(0);
      expect(list.stdout.trim().split("\n")).toEqual([...SHIPPED, ...lockfile].sort());
    });

    // The npm twin deploys once (its reuse is the same program's: test/unit/install.test.ts), so
    // the file stays short on a loaded machine.
    const full = pm === "pnpm";
    it(`deploys with the ${pm} workspace filter and runs in apps/api${full ? "; redeploys reusing node_modules; rolls back" : ""}`, async () => {
      const first = uniqueRelease(`ws${pm}1`);
      const one = await nexus(["-c", config, "deploy", "--release-id", first]);
      expect(one.exitCode, one.all).toBe(0);
      expect(installLines(one.all)).toHaveLength(SERVERS.length);
      for (const line of installLines(one.all)) expect(line).toContain(`fresh install with ${command}`);
      for (const server of SERVERS) {
        const release = path.join(deployDir(server), "releases", first);
        expect(existsSync(path.join(release, "packages", "unrelated")), server).toBe(false);
        expect(existsSync(path.join(release, "tools")), server).toBe(false);
        expect(readdirSync(path.join(release, "apps"))).toEqual(["api"]);
        // The unrelated package's dependency is not installed either.
        const modules = path.join(release, "node_modules");
        expect(existsSync(path.join(modules, "nexus-serve")), server).toBe(false);
        if (pm === "pnpm")
          expect(readdirSync(path.join(modules, ".pnpm")).filter((n) => n.startsWith("nexus-"))).toEqual([
            expect.stringMatching(/^nexus-greeting@/),
          ]);
      }
      const served = await answer();
      expect(served.release).toBe(first);
      expect(served.greeting).toContain(via);
      expect(served.cwd).toBe("apps/api");
      if (!full) return;

      const second = uniqueRelease(`ws${pm}2`);
      const two = await nexus(["-c", config, "deploy", "--release-id", second]);
      expect(two.exitCode, two.all).toBe(0);
      expect(installLines(two.all)).toHaveLength(SERVERS.length);
      for (const line of installLines(two.all)) expect(line).toContain("node_modules reused");
      expect((await answer()).release).toBe(second);

      const back = await nexus(["-c", config, "rollback"]);
      expect(back.exitCode, back.all).toBe(0);
      for (const server of SERVERS) expect(currentRelease(server)).toBe(first);
      const restored = await answer();
      expect(restored.release).toBe(first);
      expect(restored.cwd).toBe("apps/api");
    });
  });
}
