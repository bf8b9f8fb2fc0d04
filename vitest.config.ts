import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // Most of the unit tier's time is spent waiting on sh (the remote scripts, run for real),
          // not on a CPU: files run side by side even on 2 cores (vitest would use cores - 1 = 1).
          maxWorkers: Math.max(3, availableParallelism()),
          // A hang guard, not a speed limit: on a loaded 2-core machine a script test can take
          // longer than vitest's default 5 s without anything being wrong (the few tests that
          // wait on a script's own grace period, 5 s, have 60 s).
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
