import { describe, expect, it } from "vitest";
import { MultiBalancer } from "../../src/balancer/multi.js";
import { FakeBalancer, server } from "../fixtures/balancer.js";

const alpha = server("alpha");
const beta = server("beta");
const both = ["alpha", "beta"];

describe("several balancers", () => {
  it("drains and enables on every balancer", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", both)];
    const multi = new MultiBalancer([a, b]);
    await multi.apply({ drain: [alpha] });
    expect([...a.drained(), ...b.drained()]).toEqual(["alpha", "alpha"]);
    await multi.apply({ enable: [alpha], drain: [beta] });
    expect([...a.drained(), ...b.drained()]).toEqual(["beta", "beta"]);
    expect(multi.host).toBe("lb1, lb2");
  });

  it("has a server in rotation only where every balancer has it, listed only where all list it", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", ["alpha"])];
    a.inRotation.set("alpha", false);
    const states = await new MultiBalancer([a, b]).state([alpha, beta]);
    expect(states).toEqual([
      { server: "alpha", upstream: "alpha:3000", present: true, inRotation: false, address: "alpha:3000" },
      { server: "beta", upstream: "beta:3000 (missing on lb2)", present: false, inRotation: false },
    ]);
  });

  it("undoes a drain on the others when one balancer refuses it, and names the one that failed", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", both)];
    b.refuse();
    const error = await new MultiBalancer([a, b]).apply({ drain: [alpha] }).catch((e: Error) => e);
    expect((error as Error).message).toBe("lb2: refused\n(the drain was undone on lb1)");
    expect(a.drained()).toEqual([]);
  });

  it("reports where an enable took effect when another balancer refuses it", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", both)];
    a.inRotation.set("alpha", false);
    b.inRotation.set("alpha", false);
    b.refuse();
    const error = await new MultiBalancer([a, b]).apply({ enable: [alpha] }).catch((e: Error) => e);
    expect((error as Error).message).toBe("lb2: refused\n(enabled on lb1 only)");
    expect(await new MultiBalancer([a, b]).state([alpha])).toMatchObject([{ inRotation: false }]);
  });

  it("is drained when no balancer holds a connection", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", both)];
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10)).toEqual({ drained: true, open: 0 });
    b.open = 2;
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10)).toEqual({
      drained: false,
      open: 2,
      detail: "lb2: 2 connection(s) still open",
    });
  });

  it("says what each balancer waited for; when one is not drained, only what still holds the server", async () => {
    const [a, b] = [new FakeBalancer("lb1", both), new FakeBalancer("lb2", both)];
    a.detail = "in-flight requests done in 0.12s";
    expect((await new MultiBalancer([a, b]).waitDrained(alpha, 10)).detail).toBe(
      "lb1: in-flight requests done in 0.12s",
    );
    // lb1 drained (its detail is no warning), lb2 timed out with no words of its own.
    b.open = 3;
    expect((await new MultiBalancer([a, b]).waitDrained(alpha, 10)).detail).toBe(
      "lb2: 3 connection(s) still open",
    );
  });
});
