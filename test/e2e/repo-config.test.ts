import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/positions.js";
import { nexus, uniqueRelease } from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo, TEST_IP_PREFIX } from "./sandbox-env.js";

/**
 * The repository's deploy.config.json is the demo sandbox's: what the README documents on the
 * sandbox must work with it as it is. Here it is pointed at the test sandbox (its dir and
 * addresses), nothing else changed, and the README's `rolling.watch` added.
 */
describe("the repository's deploy.config.json", () => {
  it("deploys with rolling.watch on the sandbox (the access log is where the sandbox's Nginx writes it)", async () => {
    const info = sandboxInfo();
    const original = readFileSync(path.join(PROJECT_ROOT, "deploy.config.json"), "utf8");
    const data = parseConfigText(original, "deploy.config.json").data as Record<string, any>;
    expect(data.balancer.accessLog).toBeDefined();
    const text = JSON.stringify({ ...data, rolling: { ...data.rolling, watch: "2s" } })
      .replaceAll(".sandbox/", `${info.dir}/`)
      .replaceAll("127.0.0.", TEST_IP_PREFIX)
      .replace(
        '"root":"fixtures/app"',
        `"root":${JSON.stringify(path.join(PROJECT_ROOT, "fixtures", "app"))}`,
      );
    const file = path.join(os.tmpdir(), `nexus-repo-config-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(file, text);
    const run = await nexus(["-c", file, "deploy", "--release-id", uniqueRelease("repo")]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/watch/);
    expect(run.all).not.toMatch(/not readable|does not exist/);
  });

  it("and the HAProxy config `sandbox up --balancer haproxy` writes deploys with rolling.watch too", async () => {
    const info = sandboxInfo();
    if (!info.haproxy) throw new Error("the e2e sandbox runs HAProxy");
    const data = JSON.parse(readFileSync(info.haproxy.deployConfig, "utf8")) as Record<string, any>;
    const file = path.join(os.tmpdir(), `nexus-haproxy-config-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ ...data, rolling: { watch: "2s" } }));
    const run = await nexus(["-c", file, "deploy", "--release-id", uniqueRelease("repo-haproxy")]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/watch/);
  });
});
