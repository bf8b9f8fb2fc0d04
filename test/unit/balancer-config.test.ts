import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { configProblems as problems } from "../fixtures/config.js";

function withBalancer(balancer: unknown): Record<string, unknown> {
  return {
    app: { name: "api" },
    servers: [
      { name: "nexus-alpha", host: "10.0.0.1" },
      { name: "nexus-beta", host: "10.0.0.2" },
    ],
    deployPath: "/srv/api",
    balancer,
  };
}

const nginx = { host: "nexus-alpha", upstreamFile: "/etc/nginx/upstream.conf" };
const haproxy = { type: "haproxy", host: "nexus-beta", backend: "app" };

describe("balancer config", () => {
  it("defaults to one Nginx balancer, also listed in balancers", () => {
    const config = resolveConfig(withBalancer(nginx), "c.json", "/p");
    expect(config.balancer).toMatchObject({ type: "nginx", host: "nexus-alpha", drainTimeout: 30_000 });
    expect(config.balancers).toHaveLength(1);
  });

  it("reads an HAProxy balancer with its defaults", () => {
    const config = resolveConfig(withBalancer(haproxy), "c.json", "/p");
    expect(config.balancers[0]).toEqual({
      type: "haproxy",
      host: "nexus-beta",
      backend: "app",
      socket: "/run/haproxy/admin.sock",
      servers: {},
      drainTimeout: 30_000,
    });
  });

  it("reads a list of balancers; config.balancer is the first, with the longest drain timeout", () => {
    const config = resolveConfig(withBalancer([nginx, { ...haproxy, drainTimeout: "45s" }]), "c.json", "/p");
    expect(config.balancers.map((b) => b.type)).toEqual(["nginx", "haproxy"]);
    expect(config.balancer).toMatchObject({ type: "nginx", host: "nexus-alpha", drainTimeout: 45_000 });
  });

  it("names the field that is wrong in a single balancer", () => {
    expect(problems(withBalancer({ host: "nexus-alpha" }))).toEqual([
      "balancer.upstreamFile: is required (expected a string)",
    ]);
    expect(problems(withBalancer({ type: "haproxy", host: "nexus-alpha" }))).toEqual([
      "balancer.backend: is required (expected a string)",
    ]);
    expect(problems(withBalancer({ type: "traefik", host: "nexus-alpha" }))).toEqual([
      'balancer.type: expected one of "nginx", "haproxy", received "traefik"',
    ]);
    expect(problems(withBalancer({ ...haproxy, sockett: "/x" }))).toEqual([
      'balancer.sockett: unknown key (did you mean "socket"?)',
    ]);
    expect(problems(withBalancer({ ...haproxy, backend: "app;shutdown" }))[0]).toMatch(
      /^balancer\.backend: use letters/,
    );
  });

  it("names the entry and field that is wrong in a list", () => {
    expect(problems(withBalancer([nginx, { type: "haproxy", host: "" }]))).toEqual([
      "balancer[1].host: must not be empty",
      "balancer[1].backend: is required (expected a string)",
    ]);
    expect(problems(withBalancer([]))).toEqual(["balancer: needs at least one balancer"]);
    expect(problems(withBalancer("nginx"))[0]).toMatch(/^balancer: /);
  });

  it("checks hosts, twins and HAProxy server names against the servers", () => {
    expect(
      problems(
        withBalancer([
          nginx,
          { ...nginx },
          { ...haproxy, host: "nexus-omega", servers: { "nexus-gamma": "web3" } },
        ]),
      ),
    ).toEqual([
      "balancer[1]: is the same balancer as balancer[0]",
      'balancer[2].host: "nexus-omega" is not a server name (expected one of "nexus-alpha", "nexus-beta" or "local")',
      'balancer[2].servers: "nexus-gamma" is not a server name',
    ]);
  });

  it("needs a mapping for a server name HAProxy would not accept", () => {
    const data = withBalancer(haproxy);
    (data.servers as { name: string }[])[0] = { name: "alpha one", host: "10.0.0.1" } as never;
    expect(problems(data)).toEqual([
      'balancer.servers: "alpha one" is not a valid HAProxy server name: map it to the name in the backend',
    ]);
    (data.balancer as Record<string, unknown>).servers = { "alpha one": "alpha1" };
    expect(() => resolveConfig(data, "c.json", "/p")).not.toThrow();
  });
});

describe("balancer config: unknown keys", () => {
  it("suggests keys of the balancer's own type", () => {
    expect(problems(withBalancer({ ...haproxy, upstreamFile: "/x" }))).toEqual([
      "balancer.upstreamFile: unknown key",
    ]);
    expect(problems(withBalancer([nginx, { ...haproxy, backnd: "x" }]))).toContain(
      'balancer[1].backnd: unknown key (did you mean "backend"?)',
    );
    expect(problems(withBalancer({ ...nginx, pidfile: "/x" }))).toEqual([
      'balancer.pidfile: unknown key (did you mean "pidFile"?)',
    ]);
  });
});
