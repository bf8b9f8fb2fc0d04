import { describe, expect, it } from "vitest";
import { nexus, writeConfig } from "./helpers.js";

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
});
