import { describe, expect, it } from "vitest";
import type { BackendState, Balancer, RotationChange } from "../../src/balancer/balancer.js";
import { MultiBalancer } from "../../src/balancer/multi.js";
import type { ServerConfig } from "../../src/config/load.js";

const server = (name: string): ServerConfig => ({
  name,
  host: name,
  port: 22,
  user: "u",
  deployPath: "/srv",
  upstream: `${name}:3000`,
  env: {},
});
const alpha = server("alpha");
const beta = server("beta");

/** An in-memory balancer: a set of servers out of rotation, optionally refusing changes. */
class FakeBalancer implements Balancer {
  readonly sharesChanges = false;
  out = new Set<string>();
  calls: RotationChange[] = [];
  refuse = false;
  open = 0;
  constructor(
    readonly host: string,
    private readonly listed = new Set(["alpha", "beta"]),
  ) {}
  async state(servers: readonly ServerConfig[]): Promise<BackendState[]> {
    return servers.map((s) => ({
      server: s.name,
      upstream: s.upstream,
      present: this.listed.has(s.name),
      inRotation: this.listed.has(s.name) && !this.out.has(s.name),
    }));
  }
  async apply(change: RotationChange): Promise<void> {
    this.calls.push(change);
    if (this.refuse) throw new Error(`${this.host}: refused`);
    for (const s of change.enable ?? []) this.out.delete(s.name);
    for (const s of change.drain ?? []) this.out.add(s.name);
  }
  async waitDrained(): Promise<{ drained: boolean; open: number }> {
    return { drained: this.open === 0, open: this.open };
  }
}

describe("several balancers", () => {
  it("drains and enables on every balancer", async () => {
    const [a, b] = [new FakeBalancer("lb1"), new FakeBalancer("lb2")];
    const multi = new MultiBalancer([a, b]);
    await multi.apply({ drain: [alpha] });
    expect([...a.out, ...b.out]).toEqual(["alpha", "alpha"]);
    await multi.apply({ enable: [alpha], drain: [beta] });
    expect([...a.out, ...b.out]).toEqual(["beta", "beta"]);
    expect(multi.host).toBe("lb1, lb2");
  });

  it("has a server in rotation only where every balancer has it, listed only where all list it", async () => {
    const [a, b] = [new FakeBalancer("lb1"), new FakeBalancer("lb2", new Set(["alpha"]))];
    a.out.add("alpha");
    const states = await new MultiBalancer([a, b]).state([alpha, beta]);
    expect(states).toEqual([
      { server: "alpha", upstream: "alpha:3000", present: true, inRotation: false },
      { server: "beta", upstream: "beta:3000 (missing on lb2)", present: false, inRotation: false },
    ]);
  });

  it("undoes a drain on the others when one balancer refuses it, and names the one that failed", async () => {
    const [a, b] = [new FakeBalancer("lb1"), new FakeBalancer("lb2")];
    b.refuse = true;
    const error = await new MultiBalancer([a, b]).apply({ drain: [alpha] }).catch((e: Error) => e);
    expect((error as Error).message).toBe("lb2: refused\n(the drain was undone on lb1)");
    expect(a.out.size).toBe(0);
  });

  it("reports where an enable took effect when another balancer refuses it", async () => {
    const [a, b] = [new FakeBalancer("lb1"), new FakeBalancer("lb2")];
    a.out.add("alpha");
    b.out.add("alpha");
    b.refuse = true;
    const error = await new MultiBalancer([a, b]).apply({ enable: [alpha] }).catch((e: Error) => e);
    expect((error as Error).message).toBe("lb2: refused\n(enabled on lb1 only)");
    expect(await new MultiBalancer([a, b]).state([alpha])).toMatchObject([{ inRotation: false }]);
  });

  it("is drained when no balancer holds a connection", async () => {
    const [a, b] = [new FakeBalancer("lb1"), new FakeBalancer("lb2")];
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10)).toEqual({ drained: true, open: 0 });
    b.open = 2;
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10)).toEqual({ drained: false, open: 2 });
  });
});
