import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
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
      warmup: 0,
      inconclusive: "pass",
      significance: 0.001,
      maxFailureRatio: 0.01,
      maxRatioToUntouched: 2,
      latency: true,
      maxLatencyRatio: 1.25,
      maxLatencyIncrease: 100,
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
    expect(config.rolling.watch).toMatchObject({
      duration: 2000,
      maxFailureRatio: 0.05,
      maxRatioToUntouched: 2,
      minRequests: 5,
      onBlind: "wait",
    });
    expect(
      resolve(
        withWatch({
          duration: "30s",
          canary: "2m",
          warmup: "5s",
          maxDuration: "90s",
          inconclusive: "rollback",
          maxLatencyIncrease: "150ms",
        }),
      ).rolling.watch,
    ).toMatchObject({
      canary: 120_000,
      warmup: 5000,
      maxDuration: 90_000,
      inconclusive: "rollback",
      maxLatencyIncrease: 150,
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
      /^rolling\.watch: expected a duration such as "30s" \(0: off\), or an object with duration, canary, warmup/,
    );
    expect(problems(withWatch(true))[0]).toMatch(/^rolling\.watch: expected a duration/);
    expect(problems(withWatch({ duration: "2s", inconclusive: "wait" }))[0]).toMatch(
      /^rolling\.watch: inconclusive: expected one of "pass"\|"halt"\|"rollback"/,
    );
    expect(problems(withWatch({ duration: "2s", significance: 0 }))[0]).toMatch(
      /^rolling\.watch\.significance: expected .*0/,
    );
    expect(problems(withWatch("2s", { accessLog: "" }))).toEqual(["balancer.accessLog: must not be empty"]);
  });
});
