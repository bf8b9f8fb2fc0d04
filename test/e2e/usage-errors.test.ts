import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { nexus, writeConfig } from "./helpers.js";
import { PROJECT_ROOT } from "./sandbox-env.js";

describe("usage errors: exit 2, and the message names the valid choices", () => {
  it("a --ssh-key path that is not a file", async () => {
    const run = await nexus(["-c", writeConfig(), "--ssh-key", "/nonexistent/id_ed25519", "status"]);
    expect(run.exitCode, run.all).toBe(2);
    expect(run.stderr).toContain("--ssh-key: /nonexistent/id_ed25519: no such file");
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("--only with an unknown server lists the servers of the config", async () => {
    const run = await nexus(["-c", writeConfig(), "deploy", "--dry-run", "--only", "web9"]);
    expect(run.exitCode, run.all).toBe(2);
    expect(run.stderr).toContain(
      '--only: unknown server "web9" (valid: nexus-alpha, nexus-beta, nexus-gamma)',
    );
  });

  it("an unknown command lists the commands", async () => {
    const run = await nexus(["deplyo"]);
    expect(run.exitCode, run.all).toBe(2);
    expect(run.stderr).toContain("unknown command 'deplyo'");
    expect(run.stderr).toMatch(/commands: deploy, rollback, .*pack.*sandbox/);
  });

  it("a sandbox size out of range names the range", async () => {
    const run = await nexus(["sandbox", "up", "--hosts", "99", "--dir", "/nonexistent/sandbox"]);
    expect(run.exitCode, run.all).toBe(2);
    expect(run.stderr).toContain("expected a whole number from 1 to 50");
  });

  it("bin/nexus.js in a checkout not built (or not installed) yet says what to run, with no stack trace", async () => {
    const checkout = mkdtempSync(path.join(os.tmpdir(), "nexus-unbuilt "));
    mkdirSync(path.join(checkout, "bin"));
    copyFileSync(path.join(PROJECT_ROOT, "bin", "nexus.js"), path.join(checkout, "bin", "nexus.js"));
    const cli = () => execa("node", ["bin/nexus.js", "--help"], { cwd: checkout, reject: false, all: true });
    const fresh = await cli();
    expect(fresh.exitCode).toBe(2);
    expect(fresh.all).toBe(
      "nexus: this checkout is not built yet (no dist/): run `npm ci && npm run build` first (npm run demo does both)",
    );
    mkdirSync(path.join(checkout, "node_modules"));
    const installed = await cli();
    expect(installed.exitCode).toBe(2);
    expect(installed.all).toContain("run `npm run build` first");
    expect(installed.all).not.toMatch(/\n\s+at |ERR_MODULE_NOT_FOUND/);
    // Built, but a dependency is gone (node_modules wiped since).
    mkdirSync(path.join(checkout, "dist", "cli"), { recursive: true });
    writeFileSync(path.join(checkout, "dist", "cli", "closed-pipes.js"), "export {};\n");
    writeFileSync(path.join(checkout, "dist", "cli", "main.js"), 'import "commander";\n');
    const broken = await cli();
    expect(broken.exitCode).toBe(2);
    expect(broken.all).toMatch(
      /^nexus: a module is missing \(.*commander.*\): run `npm ci && npm run build` first/,
    );
  });
});
