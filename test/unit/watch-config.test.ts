import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { describeEvent, summaryTable } from "../../src/report/format.js";
import { configProblems as problems } from "../fixtures/config.js";

function withWatch(watch: unknown, balancer: Record<string, unknown> = {}) {
  return {
    app: { name: "api" },
    servers: [{ name: "a", host: "10.0.0.1" }],
    balancer: { host: "a", upstreamFile: "/etc/nginx/conf.d/upstream.conf", ...balancer },
    rolling: watch === undefined ? {} : { watch },
  };
}

const resolve = (data: unknown) => resolveConfig(data, "deploy.config.json", "/project");

describe("rolling.watch", () => {
  it("is off by default, and the access log has Nginx's usual path", () => {
    const config = resolve(withWatch(undefined));
    expect(config.rolling.watch.duration).toBe(0);
    expect(config.balancer.type === "nginx" && config.balancer.accessLog).toBe("/var/log/nginx/access.log");
  });

  it("takes a duration, with the default thresholds", () => {
    expect(resolve(withWatch("30s")).rolling.watch).toEqual({
      duration: 30_000,
      maxFailureRatio: 0.01,
      maxRatioToUntouched: 2,
      minRequests: 50,
      onBlind: "needs-human",
    });
    expect(resolve(withWatch(0)).rolling.watch.duration).toBe(0);
  });

  it("takes an object with thresholds", () => {
    const config = resolve(
      withWatch(
        { duration: "2s", maxFailureRatio: 0.05, minRequests: 5, onBlind: "wait" },
        { accessLog: "~/nginx/access.log" },
      ),
    );
    expect(config.rolling.watch).toEqual({
      duration: 2000,
      maxFailureRatio: 0.05,
      maxRatioToUntouched: 2,
      minRequests: 5,
      onBlind: "wait",
    });
    expect(config.balancer.type === "nginx" && config.balancer.accessLog).toBe("~/nginx/access.log");
  });

  it("names the field and what is wrong", () => {
    expect(problems(withWatch("soon"))).toEqual([
      'rolling.watch: expected a duration such as "30s" (0: off), received "soon"',
    ]);
    expect(problems(withWatch({ duration: "x" }))).toEqual([
      'rolling.watch.duration: expected a duration such as "30s" (0: off), received "x"',
    ]);
    expect(problems(withWatch({ duration: "2s", maxFailureRatio: 5 }))).toEqual([
      "rolling.watch.maxFailureRatio: expected at most 1, received 5",
    ]);
    expect(problems(withWatch({ duration: "2s", maxRatioToUntouched: 0.5 }))).toEqual([
      "rolling.watch.maxRatioToUntouched: expected at least 1, received 0.5",
    ]);
    expect(problems(withWatch({ duraton: "2s" }))[0]).toMatch(
      /^rolling\.watch: expected a duration such as "30s" \(0: off\), or an object with duration, maxFailureRatio/,
    );
    expect(problems(withWatch(true))[0]).toMatch(/^rolling\.watch: expected a duration/);
    expect(problems(withWatch("2s", { accessLog: "" }))).toEqual(["balancer.accessLog: must not be empty"]);
  });
});

describe("reporting the watch", () => {
  it("describes a breach with its numbers and the threshold crossed", () => {
    const text = describeEvent({
      type: "watch",
      server: "a",
      result: "breach",
      requests: 104,
      failures: 7,
      rate: 7 / 104,
      limit: 0.01,
      threshold: "maxFailureRatio",
      untouchedRate: 0,
      seconds: 2.04,
      message: "7 of 104 request(s) failed (6.7%), above maxFailureRatio 1%",
    });
    expect(text).toBe(
      "a: watch FAILED: 7/104 failed (6.7%) in 2.0s, limit 1% (maxFailureRatio); untouched 0%\n  7 of 104 request(s) failed (6.7%), above maxFailureRatio 1%",
    );
  });

  it("adds the watched column only when a watch ran", () => {
    expect(summaryTable([{ server: "a", result: "deployed" }])[0]).not.toMatch(/watched/);
    const table = summaryTable([
      { server: "a", result: "rolled back", watched: { requests: 104, failures: 7, rate: 7 / 104 } },
      { server: "b", result: "not reached" },
    ]);
    expect(table[0]).toMatch(/out of rotation\s+watched\s+note/);
    expect(table[2]).toMatch(/6\.7% \(7\/104\)/);
    expect(table[3]).toMatch(/ - *$/);
  });
});
