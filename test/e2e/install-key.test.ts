import { readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deployDir, nexus, SERVERS, uniqueRelease, writeConfig } from "./helpers.js";
import { TEST_SANDBOX_DIR } from "./sandbox-env.js";

/**
 * Issue 26, the reuse key: node_modules is reused only when the lockfile, package.json, the package
 * manager and its version, and the server's Node ABI, platform and arch are all unchanged. A Node
 * upgrade on one server (its `node` now reports another process.versions.modules) means a fresh
 * install there, said in its stage line, while the others still reuse.
 */

// The sandbox's bin is first on every host's PATH: a `node` there is the `node` the hosts run.
// It reports another ABI on nexus-beta only (sshd sets NEXUS_SANDBOX_HOST for each host's sessions).
// By the state dir's real path: the checkout (and the link in it) may sit where the deploy user
// cannot go (root's home is 0700), and the wrapper runs as that user.
const bin = () => path.join(realpathSync(TEST_SANDBOX_DIR), "bin");
const UPGRADED = "nexus-beta";

function upgradeNodeOnBeta(): void {
  const NODE = path.join(bin(), "node");
  const PRELOAD = path.join(bin(), "e2e-node-abi.cjs");
  writeFileSync(
    PRELOAD,
    'Object.defineProperty(process, "versions", { value: { ...process.versions, modules: "999" } });\n',
    { mode: 0o644 },
  );
  writeFileSync(
    NODE,
    `#!/bin/sh\nif [ "\${NEXUS_SANDBOX_HOST:-}" = ${UPGRADED} ]; then exec '${process.execPath}' -r '${PRELOAD}' "$@"; fi\nexec '${process.execPath}' "$@"\n`,
    { mode: 0o755 },
  );
}

function restoreNode(): void {
  rmSync(path.join(bin(), "node"), { force: true });
  rmSync(path.join(bin(), "e2e-node-abi.cjs"), { force: true });
}

/** Each server's install line: "nexus-alpha: node_modules reused (…)". */
function installLines(output: string): Map<string, string> {
  const lines = new Map<string, string>();
  for (const line of output.split("\n")) {
    const server = SERVERS.find((name) => line.includes(name));
    if (server && /\binstall\b/.test(line) && /reused|fresh install/.test(line)) lines.set(server, line);
  }
  return lines;
}

function installKey(server: string): string {
  return readFileSync(path.join(deployDir(server), "current", "node_modules", ".nexus-install-key"), "utf8");
}

describe("the reuse key on the sandbox", () => {
  const config = writeConfig();
  afterAll(restoreNode);

  it("reuses node_modules until a server's Node ABI changes, then installs afresh there only, and says why", async () => {
    const first = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("k1")]);
    expect(first.exitCode, first.all).toBe(0);
    const abi = process.versions.modules;
    for (const server of SERVERS) {
      expect(installKey(server)).toContain(`node-abi ${abi}\n`);
      expect(installKey(server)).toMatch(
        /^manager npm \d+\.\d+\.\d+\nlockfile package-lock\.json [0-9a-f]{64}\n/,
      );
    }

    const same = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("k2")]);
    expect(same.exitCode, same.all).toBe(0);
    const reused = installLines(same.all);
    for (const server of SERVERS) expect(reused.get(server), same.all).toMatch(/node_modules reused/);

    upgradeNodeOnBeta();
    const upgraded = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("k3")]);
    expect(upgraded.exitCode, upgraded.all).toBe(0);
    const lines = installLines(upgraded.all);
    expect(lines.get(UPGRADED), upgraded.all).toContain(
      `fresh install with npm ci: Node ABI changed (${abi} → 999): native modules must be rebuilt`,
    );
    for (const server of SERVERS.filter((s) => s !== UPGRADED))
      expect(lines.get(server), upgraded.all).toMatch(/node_modules reused/);
    expect(installKey(UPGRADED)).toContain("node-abi 999\n");

    // Back to the first Node: its ABI differs from the one beta's modules were last built for.
    restoreNode();
    const back = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("k4")]);
    expect(back.exitCode, back.all).toBe(0);
    expect(installLines(back.all).get(UPGRADED), back.all).toContain(`Node ABI changed (999 → ${abi})`);
  });
});
