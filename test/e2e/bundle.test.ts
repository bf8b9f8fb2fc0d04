import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs build script, no types
import { BUNDLE, bundleIsFresh } from "../../scripts/bundle.mjs";
import { PROJECT_ROOT } from "./sandbox-env.js";

describe("bundle/nexus.mjs (what the Action runs and the npm package ships)", () => {
  it("is what `npm run bundle` makes of the current sources and lockfile: commit it after changing src/", async () => {
    expect(BUNDLE).toBe(path.join(PROJECT_ROOT, "bundle", "nexus.mjs"));
    expect(await bundleIsFresh(), "bundle/nexus.mjs is stale: run `npm run bundle` and commit it").toBe(true);
    // ...and the check does see a difference.
    const stale = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-bundle-")), "nexus.mjs");
    writeFileSync(stale, `${readFileSync(BUNDLE, "utf8")}// edited\n`);
    expect(await bundleIsFresh(stale)).toBe(false);
  });

  it("runs on its own, with no node_modules and without ssh2's optional native addons", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-bundle-alone-"));
    const copy = path.join(dir, "nexus.mjs");
    writeFileSync(copy, readFileSync(BUNDLE));
    const help = await execa("node", [copy, "--help"], { cwd: dir, reject: false, env: { NO_COLOR: "1" } });
    expect(help.exitCode, help.stderr).toBe(0);
    expect(help.stdout).toContain("deploy");
    // Loading the SSH layer (ssh2 and its crypto) must not need cpu-features or sshcrypto.node.
    const ssh = await execa("node", [copy, "-c", "missing.json", "status"], { cwd: dir, reject: false });
    expect(ssh.exitCode).toBe(2);
    expect(ssh.stderr).toContain("missing.json");
    expect(ssh.stderr).not.toMatch(/Cannot find module|internal error/);
  });
});
