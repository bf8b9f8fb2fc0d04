import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { configProblems as problems } from "../fixtures/config.js";

function valid(): Record<string, unknown> {
  return {
    app: { name: "api", root: "app" },
    servers: [
      { name: "nexus-alpha", host: "10.0.0.1" },
      { name: "nexus-beta", host: "10.0.0.2", port: 2222, env: { ROLE: "beta" } },
    ],
    deployPath: "/srv/api",
    pm2: { env: { NODE_ENV: "production" } },
    balancer: { host: "nexus-alpha", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
  };
}

describe("config", () => {
  it("fills defaults and merges per-server values", () => {
    const config = resolveConfig(valid(), "deploy.config.json", "/project");
    expect(config.app.root).toBe("/project/app");
    expect(config.app.start).toBe("server.js");
    expect(config.servers[0]).toMatchObject({ port: 22, deployPath: "/srv/api", upstream: "10.0.0.1:3000" });
    expect(config.servers[1]?.env).toEqual({ NODE_ENV: "production", ROLE: "beta" });
    expect(config.health).toMatchObject({ path: "/health", port: 3000, passes: 3, via: "ssh" });
    expect(config.balancer.drainTimeout).toBe(30_000);
    expect(config.rolling).toEqual({
      strategy: "drain",
      batchSize: 1,
      failedServers: "drained",
      onFailure: "rollback-all",
      canary: 0,
      pause: 0,
      watch: expect.objectContaining({
        duration: 0,
        maxFailureRatio: 0.01,
        maxRatioToUntouched: 2,
        minRequests: 50,
        onBlind: "needs-human",
      }),
    });
    expect(config.notify).toEqual([]);
    expect(config.pm2.name).toBe("api");
    expect(config.process).toEqual({ type: "pm2" });
    expect(config.ssh.hostKeys).toBe("strict");
  });

  it("parses durations with units", () => {
    const data = valid();
    data.health = { deadline: "2m", interval: "500ms", timeout: 1500 };
    const config = resolveConfig(data, "deploy.config.json", "/project");
    expect(config.health).toMatchObject({ deadline: 120_000, interval: 500, timeout: 1500 });
  });

  it("names the field and the wrong value", () => {
    const data = valid();
    (data.servers as Record<string, unknown>[])[1]!.port = "22a";
    expect(problems(data)).toEqual(['servers[1].port: expected a number, received "22a"']);
  });

  it("reports a missing field", () => {
    const data = valid();
    delete (data.servers as Record<string, unknown>[])[0]!.host;
    expect(problems(data)).toEqual(["servers[0].host: is required (expected a string)"]);
  });

  it("refuses unknown keys and suggests the closest", () => {
    const data = valid();
    (data.servers as Record<string, unknown>[])[0]!.hots = "x";
    data.balancr = {};
    expect(problems(data)).toEqual([
      'servers[0].hots: unknown key (did you mean "host"?)',
      'balancr: unknown key (did you mean "balancer"?)',
    ]);
  });

  it("a swap of two letters is one edit: app.prot suggests port, not root", () => {
    const data = valid();
    (data.app as Record<string, unknown>).prot = 3000;
    expect(problems(data)).toEqual(['app.prot: unknown key (did you mean "port"?)']);
  });

  it("explains enums, durations and bounds", () => {
    const data = valid();
    data.rolling = { onFailure: "explode", batchSize: 0 };
    data.health = { deadline: "soon" };
    expect(problems(data)).toEqual([
      'health.deadline: expected a duration such as "500ms", "30s" or "2m", received "soon"',
      "rolling.batchSize: expected at least 1, received 0",
      'rolling.onFailure: expected one of "rollback-all", "halt", received "explode"',
    ]);
  });

  it("checks references between fields", () => {
    const data = valid();
    (data.servers as Record<string, unknown>[])[1]!.name = "nexus-alpha";
    data.balancer = { host: "nexus-omega", upstreamFile: "/x" };
    data.deployPath = "srv/api";
    expect(problems(data)).toEqual([
      'servers[1].name: "nexus-alpha" is used twice',
      'deployPath: must be absolute or start with "~/", received "srv/api"',
      'balancer.host: "nexus-omega" is not a server name (expected one of "nexus-alpha" or "local")',
    ]);
  });

  it("refuses two servers on one login (one PM2, one app name), not two users or ports on one host", () => {
    const data = valid();
    const servers = data.servers as Record<string, unknown>[];
    servers[1]!.host = servers[0]!.host;
    servers[1]!.port = 22;
    servers[1]!.upstream = "10.0.0.1:3001";
    servers[0]!.user = "deploy";
    servers[1]!.user = "deploy";
    expect(problems(data)).toEqual([
      'servers[1]: "nexus-beta" logs in as deploy@10.0.0.1:22, as "nexus-alpha" does: one PM2 would run both as "api", each restart replacing the other\'s; use one entry per machine and login',
    ]);
    servers[1]!.user = "deploy2";
    expect(() => resolveConfig(data, "x", "/p")).not.toThrow();
    servers[1]!.user = "deploy";
    servers[1]!.port = 2222;
    expect(() => resolveConfig(data, "x", "/p")).not.toThrow();
  });
});
