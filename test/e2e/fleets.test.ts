import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import {
  currentRelease,
  deployDir,
  fixture,
  nexus,
  plantLock,
  readUpstream,
  SERVERS,
  uniqueRelease,
  writeConfig,
} from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

/**
 * Issue 27 on the real sandbox: destinations (`-d staging`: deploy.staging.json on top of
 * deploy.config.json), servers from an inventory command with the config on stdin (`-c -`), and
 * the failure budget (`rolling.maxFailed`). One file, one sandbox: each scenario starts from the
 * fleet the previous one left, all in rotation.
 */

function historyOf(name: string): Record<string, unknown>[] {
  const text = readFileSync(path.join(deployDir(name), ".nexus", "history.jsonl"), "utf8");
  return text
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Whether the sandbox's upstream file has the server's line marked down (drained). */
function drainedInUpstream(name: string): boolean {
  const host = sandboxInfo().hosts.find((h) => h.name === name);
  const line = readUpstream()
    .split("\n")
    .find((l) => l.includes(`${host?.address}:`));
  return /\bdown\b/.test(line ?? "");
}

/** The sandbox's servers as the config lists them (each with its HOST env the fixture app reads). */
function sandboxServers(
  only: readonly string[] = SERVERS,
  env: (name: string) => Record<string, string> = () => ({}),
) {
  return sandboxInfo()
    .hosts.filter((h) => only.includes(h.name))
    .map((h) => ({
      name: h.name,
      host: h.address,
      port: h.sshPort,
      env: { HOST: h.address, ...env(h.name) },
    }));
}

describe("real fleets (issue 27)", () => {
  const config = writeConfig();
  let good = "";

  beforeAll(async () => {
    good = uniqueRelease("base");
    const run = await nexus(["-c", config, "deploy", "--release-id", good]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("-d staging deploys the merged config, and history, status and locks name the destination", async () => {
    const dir = path.dirname(config);
    const lbHost = sandboxInfo().lb.host;
    const staging = [...new Set(["nexus-alpha", "nexus-beta", lbHost])].filter((n) => SERVERS.includes(n));
    writeFileSync(
      path.join(dir, "deploy.staging.json"),
      `{
  // staging: two of the servers, and its own env on top of the base's
  "servers": ${JSON.stringify(sandboxServers(staging))},
  "pm2": { "env": { "STAGE": "staging" } }
}
`,
    );
    writeFileSync(path.join(dir, "deploy.broken.json"), `{\n  "rolling": { "batchSize": "lots" }\n}\n`);

    // The merged config, secrets masked; a mistake in the overlay is placed in the overlay.
    const shown = await nexus(["-c", config, "-d", "staging", "config"]);
    expect(shown.exitCode, shown.all).toBe(0);
    const merged = JSON.parse(shown.stdout) as {
      destination: string;
      servers: { name: string; env: Record<string, string> }[];
    };
    expect(merged.destination).toBe("staging");
    expect(merged.servers.map((s) => s.name)).toEqual(staging);
    // The base's env and the overlay's (its value is the destination's name, shown in the clear).
    expect(merged.servers[0]?.env).toMatchObject({ NODE_ENV: "***", SECRET_TOKEN: "***", STAGE: "staging" });
    expect(shown.stdout).not.toContain("s3cr3t-do-not-print");
    const broken = await nexus(["-c", config, "config"], { env: { NEXUS_DESTINATION: "broken" } });
    expect(broken.exitCode).toBe(2);
    expect(broken.stderr).toMatch(/deploy\.broken\.json:2:16: rolling\.batchSize: /);
    expect(broken.stderr).not.toMatch(/\n\s+at /);

    const release = uniqueRelease("staging");
    const run = await nexus(["-c", config, "deploy", "--release-id", release], {
      env: { NEXUS_DESTINATION: "staging" },
    });
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stderr).toMatch(/deploy \S+ \(-d staging\) →/);
    for (const name of SERVERS)
      expect(currentRelease(name), name).toBe(staging.includes(name) ? release : good);
    const line = historyOf("nexus-alpha").at(-1);
    expect(line).toMatchObject({ event: "deploy", release, destination: "staging" });

    plantLock("nexus-beta", {
      user: "ci",
      host: "runner-7",
      pid: 4242,
      command: "deploy",
      destination: "staging",
      time: new Date().toISOString(),
      token: "0123456789abcdef",
    });
    try {
      const status = await nexus(["-c", config, "-d", "staging", "--json", "status"]);
      const result = JSON.parse(status.stdout.trim().split("\n").at(-1) ?? "{}") as {
        destination?: string;
        rows: { server: string; lock: string }[];
      };
      expect(result.destination).toBe("staging");
      expect(result.rows.map((r) => r.server)).toEqual(staging);
      expect(result.rows.find((r) => r.server === "nexus-beta")?.lock).toMatch(
        /ci@runner-7 .*deploy -d staging/,
      );
      // A hint repeats the -c and -d it was run with: copied, it acts on the same fleet.
      const locked = await nexus(["-c", config, "-d", "staging", "deploy"]);
      expect(locked.exitCode, locked.all).toBe(1);
      expect(locked.stderr).toContain(`run \`nexus -c ${config} -d staging recover\``);
    } finally {
      rmSync(path.join(deployDir("nexus-beta"), ".nexus", "lock"), { force: true });
    }
  });

  it("servers from an inventory command, the config on stdin (-c -): deploys; a failing command is exit 2", async () => {
    // A project directory of its own: the app, and the inventory script beside it.
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-inventory-"));
    cpSync(fixture("app"), path.join(dir, "app"), { recursive: true });
    const inventory = JSON.stringify(sandboxServers());
    writeFileSync(path.join(dir, "inventory.sh"), `#!/bin/sh\nprintf '%s\\n' '${inventory}'\n`, {
      mode: 0o755,
    });
    const base = JSON.parse(readFileSync(config, "utf8")) as Record<string, unknown>;
    const text = (servers: unknown) =>
      JSON.stringify({ ...base, app: { ...(base.app as object), root: "app" }, servers });

    const release = uniqueRelease("inventory");
    const cli = path.join(PROJECT_ROOT, "bin", "nexus.js");
    const run = await execa("node", [cli, "-c", "-", "deploy", "--release-id", release], {
      cwd: dir,
      input: text({ fromCommand: "./inventory.sh" }),
      reject: false,
      all: true,
      env: { CI: "true", NO_COLOR: "1" },
      timeout: 150_000,
    });
    expect(run.exitCode, run.all).toBe(0);
    for (const name of SERVERS) expect(currentRelease(name), name).toBe(release);

    const failing = await execa("node", [cli, "-c", "-", "config"], {
      cwd: dir,
      input: text({ fromCommand: "echo 'token expired' >&2; exit 3" }),
      reject: false,
      env: { CI: "true", NO_COLOR: "1" },
    });
    expect(failing.exitCode).toBe(2);
    expect(failing.stderr).toMatch(
      /\(stdin\):\d+:\d+: servers\.fromCommand: `echo 'token expired' >&2; exit 3`: it exited with code 3; stderr: "token expired"/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it("rolling.maxFailed 1: the roll finishes the others, leaves the failed server drained on its release, exits 1 naming it", async () => {
    const before = currentRelease("nexus-beta");
    const release = uniqueRelease("budget");
    const failing = writeConfig({
      servers: sandboxServers(
        SERVERS,
        (name): Record<string, string> => (name === "nexus-beta" ? { FIXTURE_HEALTH_STATUS: "500" } : {}),
      ),
      health: { interval: "100ms", deadline: "6s", passes: 3 },
      rolling: { maxFailed: 1 },
    });
    const run = await nexus(["-c", failing, "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(/nexus-beta\s+failed\s+.*failed its health gate: back on /);
    expect(run.stderr).toMatch(
      /failed within the failure budget \(rolling\.maxFailed, 1 of 1 spent\): nexus-beta/,
    );
    expect(currentRelease("nexus-alpha")).toBe(release);
    expect(currentRelease("nexus-gamma")).toBe(release);
    expect(currentRelease("nexus-beta")).toBe(before);
    expect(drainedInUpstream("nexus-beta")).toBe(true);
    expect(drainedInUpstream("nexus-alpha")).toBe(false);

    // A human looks, then puts it back (its release is healthy).
    const enable = await nexus(["-c", config, "enable", "nexus-beta"]);
    expect(enable.exitCode, enable.all).toBe(0);
    expect(drainedInUpstream("nexus-beta")).toBe(false);

    // --skip-unreachable: an unreachable server spends the budget before anything is touched.
    const prefix = sandboxInfo().hosts[0]?.address.replace(/\d+$/, "") ?? "127.0.1.";
    const ghost = writeConfig({
      servers: [
        ...sandboxServers(),
        { name: "nexus-ghost", host: `${prefix}98`, port: 2222, upstream: `${prefix}98:3000` },
      ],
      ssh: { readyTimeout: "3s" },
      rolling: { maxFailed: 0 },
    });
    const skipped = await nexus([
      "-c",
      ghost,
      "deploy",
      "--skip-unreachable",
      "--release-id",
      uniqueRelease("ghost"),
    ]);
    expect(skipped.exitCode, skipped.all).toBe(1);
    expect(skipped.stderr).toMatch(/exceeded before the roll: 1 server\(s\) unreachable \(nexus-ghost\)/);
    expect(currentRelease("nexus-alpha")).toBe(release);
  });
});
