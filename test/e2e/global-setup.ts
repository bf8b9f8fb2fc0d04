import { existsSync } from "node:fs";
import path from "node:path";
import { sandboxDown, sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { PROJECT_ROOT, TEST_IP_PREFIX, TEST_SANDBOX_DIR } from "./sandbox-env.js";

/** One sandbox for the whole e2e run: real sshd per host, real Nginx, PM2 started by nexus itself. */
export async function setup(): Promise<() => Promise<void>> {
  if (!existsSync(path.join(PROJECT_ROOT, "dist", "cli", "main.js"))) {
    throw new Error("dist/ is missing: run `npm run build` first (npm test does)");
  }
  // A clean slate every run: no releases, PM2 state or upstream edits left from a previous one.
  await sandboxPurge(TEST_SANDBOX_DIR);
  // HAProxy beside Nginx: the balancer tests run for both drivers (and for both as a pair).
  await sandboxUp({ dir: TEST_SANDBOX_DIR, ipPrefix: TEST_IP_PREFIX, balancer: "haproxy" });
  return async () => {
    if (process.env.NEXUS_KEEP_SANDBOX) return;
    await sandboxDown(TEST_SANDBOX_DIR);
  };
}
