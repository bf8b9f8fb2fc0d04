import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { currentRelease, uniqueRelease, writeConfig } from "./helpers.js";
import { PROJECT_ROOT } from "./sandbox-env.js";

const CLI = path.join(PROJECT_ROOT, "bin", "nexus.js");
const ESC = "\x1b";

/**
 * The CLI on a pseudo-terminal (util-linux `script`) sized `columns` wide, CI unset. A pty that
 * nobody sized reports 0 columns, as some CI runners and `docker exec -t` do.
 */
async function onTerminal(args: string[], columns: number) {
  const env = { ...process.env } as Record<string, string | undefined>;
  delete env.CI;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  const command = `stty cols ${columns} rows ${columns === 0 ? 0 : 40} && exec node ${[CLI, ...args].join(" ")}`;
  return execa("script", ["-qec", command, "/dev/null"], {
    reject: false,
    extendEnv: false,
    env,
    // Today's failure mode is a spinner that never ends: fail on time, not hang the suite.
    timeout: 150_000,
  });
}

describe.skipIf(!existsSync("/usr/bin/script"))("a terminal", () => {
  it("that reports 0 columns gets plain lines and the deploy ends (no spinner looping on cursor codes)", async () => {
    const release = uniqueRelease("cols0");
    const run = await onTerminal(
      ["-c", writeConfig(), "deploy", "--only", "nexus-gamma", "--release-id", release],
      0,
    );
    expect(run.timedOut, run.stdout.slice(-2000)).toBe(false);
    expect(run.exitCode, run.stdout.slice(-2000)).toBe(0);
    // No cursor movement or line clearing: the spinner never ran.
    expect(run.stdout).not.toMatch(new RegExp(`${ESC}\\[\\d*[ABGK]`));
    expect(run.stdout).toMatch(/^\d\d:\d\d:\d\d nexus-gamma: /m);
    expect(currentRelease("nexus-gamma")).toBe(release);
  });

  it("with a real width gets the spinner and ✔ lines", async () => {
    const release = uniqueRelease("cols100");
    const run = await onTerminal(
      ["-c", writeConfig(), "deploy", "--only", "nexus-gamma", "--release-id", release],
      100,
    );
    expect(run.exitCode, run.stdout.slice(-2000)).toBe(0);
    expect(run.stdout).toContain("✔");
    expect(currentRelease("nexus-gamma")).toBe(release);
  });
});

describe("a closed stdout", () => {
  it("`nexus nginx-config | head` ends quietly: no EPIPE stack trace, exit 0", async () => {
    // The reader is gone before nexus writes (deterministic, unlike a real `head -2` race).
    const child = spawn(process.execPath, [CLI, "-c", writeConfig(), "nginx-config"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  it("in a shell pipeline into `head -2`: the first lines, then a quiet end", async () => {
    const run = await execa("sh", ["-c", `node ${CLI} -c ${writeConfig()} nginx-config | head -2`], {
      reject: false,
    });
    expect(run.exitCode).toBe(0);
    expect(run.stdout.split("\n")).toHaveLength(2);
    expect(run.stderr).toBe("");
  });
});
