import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { REPORT_RELEASE_HINT, releaseCheck, releaseProblem } from "../../src/health/release-check.js";

describe("health.checkRelease", () => {
  it('defaults to "auto"', () => {
    const config = resolveConfig(
      {
        app: { name: "api", root: "." },
        servers: [{ name: "a", host: "127.0.0.1" }],
        balancer: { host: "a", upstreamFile: "/etc/nginx/upstream.conf" },
      },
      "test",
      "/",
    );
    expect(config.health.checkRelease).toBe("auto");
  });

  it("false never checks", () => {
    expect(releaseCheck(false, "r2")).toBeUndefined();
    expect(releaseProblem(releaseCheck(false, "r2"), "r1")).toBeUndefined();
  });

  it("true requires the new release, and names the setting when it is missing", () => {
    const check = releaseCheck(true, "r2");
    expect(releaseProblem(check, "r2")).toBeUndefined();
    expect(releaseProblem(check, undefined)).toMatch(/reports no release.*health\.checkRelease.*"auto"/);
    expect(releaseProblem(check, "r1")).toMatch(/answers release r1, expected r2.*health\.checkRelease/);
  });

  it('"auto" checks a reported release, passes a plain OK and hints once per run', () => {
    const warnings: string[] = [];
    const warn = (event: { message: string }) => warnings.push(event.message);
    const check = releaseCheck("auto", "r2", warn);
    expect(releaseProblem(check, "r1")).toMatch(/answers release r1, expected r2.*health\.checkRelease/);
    expect(releaseProblem(check, "r2")).toBeUndefined();
    expect(releaseProblem(check, undefined)).toBeUndefined();
    expect(releaseProblem(check, undefined)).toBeUndefined();
    expect(releaseProblem(releaseCheck("auto", "r3", warn), undefined)).toBeUndefined();
    expect(warnings).toEqual([REPORT_RELEASE_HINT]);
    expect(REPORT_RELEASE_HINT).toMatch(/NEXUS_RELEASE/);
  });
});
