import { mkdirSync, mkdtempSync, readlinkSync, realpathSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { type SandboxInfo, sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { nexus, uniqueRelease, writeConfig } from "./helpers.js";
import { TEST_IP_PREFIX } from "./sandbox-env.js";

/**
 * A second, one-host sandbox named from a directory closed to others (mode 700, like /root or a
 * private home) under a path with spaces: the checkouts where `npm run demo` used to fail. It
 * shares the suite's addresses on other ports.
 */
describe("a sandbox named from a closed directory with spaces in its path", () => {
  const closed = realpathSync(mkdtempSync(path.join(os.tmpdir(), "nexus-closed ")));
  const named = path.join(closed, "my checkout", ".sandbox");
  mkdirSync(path.dirname(named));
  const ports = { sshPort: 2422, appPort: 3400, lbPort: 8480 };
  let info: SandboxInfo | undefined;

  afterAll(async () => {
    await sandboxPurge(named);
  });

  it("starts with its state where the hosts' user reaches it, deploys, and opens nothing in the closed directory", async () => {
    expect(statSync(closed).mode & 0o777).toBe(0o700);
    info = await sandboxUp({ dir: named, ipPrefix: TEST_IP_PREFIX, hosts: 1, ...ports });
    // The named dir links to the state dir; the closed directory keeps its mode.
    expect(readlinkSync(named)).toBe(info.dir);
    expect(info.dir).not.toContain(closed);
    expect(info.dir).not.toMatch(/\s/);
    expect(statSync(closed).mode & 0o777).toBe(0o700);
    // The hosts run their own pm2, from the state dir.
    expect(realpathSync(path.join(info.dir, "bin", "pm2"))).toMatch(
      new RegExp(`^${info.dir}/pm2/node_modules/pm2/`),
    );

    const release = uniqueRelease("anywhere");
    const config = writeConfig({ app: { port: ports.appPort } }, info);
    const run = await nexus(["-c", config, "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    const answer = await request(info.lb.url);
    expect(answer.statusCode).toBe(200);
    expect(((await answer.body.json()) as { release?: string }).release).toBe(release);
  });

  it("sandbox down --purge stops it and removes its state and the link", async () => {
    if (!info) throw new Error("the sandbox did not start");
    const run = await nexus(["sandbox", "down", "--purge", "--dir", named]);
    expect(run.exitCode, run.all).toBe(0);
    expect(() => statSync(info?.dir as string)).toThrow(/ENOENT/);
    expect(() => readlinkSync(named)).toThrow(/ENOENT/);
  });
});
