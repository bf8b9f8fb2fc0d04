import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  installLines,
  nexus,
  SERVERS,
  throughLb,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";

/**
 * Issue 26, package managers on the sandbox: a pnpm app and a Yarn app each install on the
 * servers with their own frozen-lockfile command (pnpm and Yarn 1 from the project's
 * devDependencies, copied into the sandbox: no download), deploy, roll back, and redeploy with
 * node_modules reused.
 */

for (const { pm, command, modules } of [
  { pm: "pnpm", command: "pnpm install", modules: ".pnpm" },
  { pm: "yarn", command: "yarn install", modules: ".yarn-integrity" },
]) {
  describe(`a ${pm} app on the sandbox`, () => {
    const config = writeConfig({ app: { root: fixture(`app-${pm}`) } });

    it(`installs with ${pm}, deploys, rolls back, and redeploys reusing node_modules`, async () => {
      const first = uniqueRelease(`${pm}1`);
      const one = await nexus(["-c", config, "deploy", "--release-id", first]);
      expect(one.exitCode, one.all).toBe(0);
      for (const line of installLines(one.all)) expect(line).toContain(`fresh install with ${command}`);
      expect(installLines(one.all)).toHaveLength(SERVERS.length);
      for (const server of SERVERS) {
        expect(currentRelease(server)).toBe(first);
        // The manager's own layout: pnpm's virtual store, Yarn's integrity file.
        expect(existsSync(path.join(deployDir(server), "current", "node_modules", modules))).toBe(true);
      }
      const answers = await throughLb(3);
      for (const answer of answers) expect(answer.release).toBe(first);

      const second = uniqueRelease(`${pm}2`);
      const two = await nexus(["-c", config, "deploy", "--release-id", second]);
      expect(two.exitCode, two.all).toBe(0);
      for (const line of installLines(two.all)) expect(line).toContain("node_modules reused");
      expect(installLines(two.all)).toHaveLength(SERVERS.length);

      const back = await nexus(["-c", config, "rollback"]);
      expect(back.exitCode, back.all).toBe(0);
      for (const server of SERVERS) expect(currentRelease(server)).toBe(first);

      const third = uniqueRelease(`${pm}3`);
      const again = await nexus(["-c", config, "deploy", "--release-id", third]);
      expect(again.exitCode, again.all).toBe(0);
      for (const line of installLines(again.all)) expect(line).toContain("node_modules reused");
      for (const answer of await throughLb(3)) expect(answer.release).toBe(third);
    });
  });
}
