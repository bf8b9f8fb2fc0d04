import { describe, expect, it } from "vitest";
import { currentRelease, nexus, SERVERS, uniqueRelease, writeConfig } from "./helpers.js";

/**
 * Issue 26, readiness: health.startTimeout is how long an app may take to start listening; the
 * gate's deadline for its passes starts at its first answer. An app that needs 6 s to listen
 * deploys with a 5 s deadline; one that never listens fails with "not listening after …", and the
 * server is rolled back to the slow one (whose start the same timeout covers).
 */

describe("slow boots on the sandbox", () => {
  const slow = uniqueRelease("slow");

  it("an app that needs 6 s to listen deploys with health.startTimeout, though the deadline is 5 s", async () => {
    const config = writeConfig({
      pm2: { env: { FIXTURE_LISTEN_AFTER_MS: "6000" } },
      health: { deadline: "5s", startTimeout: "20s" },
    });
    const run = await nexus(["-c", config, "deploy", "--release-id", slow]);
    expect(run.exitCode, run.all).toBe(0);
    for (const server of SERVERS) expect(currentRelease(server)).toBe(slow);
  });

  it('an app that never listens fails with "not listening after 9s", and the server goes back to the slow one', async () => {
    const config = writeConfig({
      pm2: { env: { FIXTURE_NEVER_LISTEN: "1" } },
      health: { deadline: "5s", startTimeout: "9s" },
    });
    const run = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("stuck")]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.all).toContain("not listening after 9s (health.startTimeout): no probe was answered");
    // Through the server's SSH connection as on a direct one: sshd could not connect, so refused.
    expect(run.all).toContain("(last: ECONNREFUSED: connection refused (nothing listening))");
    for (const server of SERVERS) expect(currentRelease(server)).toBe(slow);
  });
});
