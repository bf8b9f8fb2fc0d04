import { describe, expect, it } from "vitest";
import { type Config, resolveConfig, type ServerConfig } from "../../src/config/load.js";
import { makePlan } from "../../src/deploy/plan.js";
import type { DeployEvent } from "../../src/events/events.js";
import { describeBudget, failureBudget, withinBudget } from "../../src/rollout/budget.js";
import type { FleetOps } from "../../src/rollout/fleet-ops.js";
import { type RollOptions, roll } from "../../src/rollout/roll.js";
import { FakeBalancer } from "../fixtures/balancer.js";

/**
 * The rolling engine driven through its interfaces: an in-memory balancer and servers whose
 * gates pass or fail on demand. Every path here is also a promise the e2e suite keeps on real parts.
 */

const NAMES = ["alpha", "beta", "gamma"];

function config(rolling: Record<string, unknown> = {}): Config {
  return resolveConfig(
    {
      app: { name: "api" },
      servers: NAMES.map((name, i) => ({ name, host: `10.0.0.${i + 1}` })),
      deployPath: "/srv/api",
      balancer: { host: "alpha", upstreamFile: "/etc/nginx/conf.d/api.conf" },
      rolling,
    },
    "deploy.config.json",
    "/project",
  );
}

class FakeServers implements FleetOps {
  readonly current = new Map(NAMES.map((n) => [n, "r1"]));
  /** `server@release` pairs whose gate fails. */
  readonly failing = new Set<string>();
  readonly unhealthy = new Set<string>();
  readonly calls: string[] = [];
  stopFails = false;
  onActivate?: (server: string, release: string) => void;

  constructor(readonly balancer: FakeBalancer) {}

  async activate(server: ServerConfig, release: string): Promise<boolean> {
    this.calls.push(`activate ${server.name} ${release}`);
    expect(this.balancer.inRotation.get(server.name), `${server.name} restarted while in rotation`).toBe(
      false,
    );
    this.current.set(server.name, release);
    this.onActivate?.(server.name, release);
    return !this.failing.has(`${server.name}@${release}`);
  }

  async healthy(server: string): Promise<boolean> {
    return !this.unhealthy.has(server);
  }

  async stop(server: ServerConfig): Promise<void> {
    this.calls.push(`stop ${server.name}`);
    if (this.stopFails) throw new Error("ssh: connection lost");
  }

  async persist(servers: string[]): Promise<void> {
    this.calls.push(`persist ${servers.join(",")}`);
  }

  prepare(server: ServerConfig, release: string): void {
    this.calls.push(`prepare ${server.name} ${release}`);
  }

  discardPrepared(): void {
    this.calls.push("discard");
  }
}

function setup(rolling: Record<string, unknown> = {}, extra: Partial<RollOptions> = {}) {
  const c = config(rolling);
  const balancer = new FakeBalancer("lb", NAMES);
  const servers = new FakeServers(balancer);
  const events: DeployEvent[] = [];
  const controller = new AbortController();
  const plan = makePlan(c, "r2");
  const options: RollOptions = {
    config: c,
    ops: servers,
    emit: (e) => events.push(e),
    signal: controller.signal,
    batches: plan.batches,
    canary: plan.canary,
    target: () => "r2",
    fallback: () => "r1",
    minInRotation: plan.minInRotation,
    onFailure: c.rolling.onFailure,
    ...extra,
  };
  const result = (name: string, rows: { server: string; result: string }[]) =>
    rows.find((r) => r.server === name)?.result;
  return { c, balancer, servers, events, controller, options, result };
}

describe("the rolling engine", () => {
  it("rolls every server with n+1 balancer changes: each enable shares the next drain", async () => {
    const { balancer, options } = setup();
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(out.rows.map((r) => [r.server, r.result, r.release])).toEqual([
      ["alpha", "deployed", "r2"],
      ["beta", "deployed", "r2"],
      ["gamma", "deployed", "r2"],
    ]);
    expect(balancer.changes).toEqual([
      { drain: ["alpha"], enable: [] },
      { drain: ["beta"], enable: ["alpha"] },
      { drain: ["gamma"], enable: ["beta"] },
      { drain: [], enable: ["gamma"] },
    ]);
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
    expect(out.touched).toEqual(["alpha", "beta", "gamma"]);
  });

  it("counts the connections a drain's timeout left to the restart, per server: drain step and summary", async () => {
    const { balancer, servers, events, options } = setup();
    // 3 WebSockets and a retired Nginx worker still there at the timeout.
    balancer.open = 4;
    balancer.connections = 3;
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(balancer.waitOptions.every((o) => o?.shutAtTimeout === true)).toBe(true);
    const drains = events.filter((e) => e.type === "step" && e.step === "drain" && e.status === "done");
    expect(drains).toHaveLength(3);
    for (const e of drains)
      expect(e).toMatchObject({
        connectionsCut: { byBalancer: 0, byRestart: 3 },
        message:
          "3 connection(s) still open at the drain timeout: 3 left to the restart (the app closes them on SIGINT)",
      });
    expect(out.rows.map((r) => r.connectionsCut)).toEqual(NAMES.map(() => ({ byBalancer: 0, byRestart: 3 })));
    expect(servers.calls.filter((c) => c.startsWith("activate"))).toHaveLength(3);
  });

  it("counts the connections the balancer shut at the drain timeout apart from the restart's", async () => {
    const { balancer, options } = setup();
    balancer.open = 2;
    balancer.connections = 2;
    balancer.canShut = true;
    const out = await roll(options);
    expect(out.rows.map((r) => r.connectionsCut)).toEqual(NAMES.map(() => ({ byBalancer: 2, byRestart: 0 })));
  });

  it("counts nothing when drained in time, or when only retired workers were left", async () => {
    const { balancer, options } = setup();
    balancer.open = 1;
    const out = await roll(options);
    expect(out.rows.map((r) => r.connectionsCut)).toEqual(NAMES.map(() => undefined));
  });

  it("with a balancer whose changes are free (a runtime API), each batch goes back at once", async () => {
    const { balancer, options } = setup();
    balancer.sharesChanges = false;
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(balancer.changes).toEqual([
      { drain: ["alpha"], enable: [] },
      { drain: [], enable: ["alpha"] },
      { drain: ["beta"], enable: [] },
      { drain: [], enable: ["beta"] },
      { drain: ["gamma"], enable: [] },
      { drain: [], enable: ["gamma"] },
    ]);
  });

  it("a failed gate rolls back that server and every one already done (rollback-all)", async () => {
    const { balancer, servers, options, result } = setup();
    servers.failing.add("beta@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("rolled back");
    expect(result("beta", out.rows)).toBe("rolled back");
    expect(result("gamma", out.rows)).toBe("not reached");
    expect([...servers.current.values()]).toEqual(["r1", "r1", "r1"]);
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
    // Every restart is readied as the roll begins, each on its own server, and asked for again at
    // its drain (the fleet's ops keep one that is ready); for the previous release on the way back
    // (beta's restore follows its failed gate: no drain).
    expect(servers.calls.filter((c) => !c.startsWith("persist"))).toEqual([
      "prepare alpha r2",
      "prepare beta r2",
      "prepare gamma r2",
      "prepare alpha r2",
      "activate alpha r2",
      "prepare beta r2",
      "activate beta r2",
      "activate beta r1",
      "prepare alpha r1",
      "activate alpha r1",
      "discard",
    ]);
  });

  it("halt keeps the verified servers on the new release and restores only the failed one", async () => {
    const { servers, options, result } = setup({ onFailure: "halt" }, { onFailure: "halt" });
    servers.failing.add("beta@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("deployed");
    expect(result("beta", out.rows)).toBe("restored");
    expect(result("gamma", out.rows)).toBe("not reached");
    expect([...servers.current.values()]).toEqual(["r2", "r1", "r1"]);
  });

  it("a failed canary stops the rollout before any other server", async () => {
    const { servers, options } = setup({ canary: 1 });
    servers.failing.add("alpha@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(out.rows.find((r) => r.server === "alpha")?.note).toBe("canary failed its health gate");
    expect(servers.calls.filter((c) => c.startsWith("activate"))).toEqual([
      "activate alpha r2",
      "activate alpha r1",
    ]);
  });

  it("the capacity guard refuses a drain that would leave too few healthy servers", async () => {
    const { balancer, servers, options } = setup({ minInRotation: 2 }, { minInRotation: 2 });
    servers.unhealthy.add("gamma");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(out.rows[0]?.note).toBe("not drained: capacity guard");
    expect(balancer.changes).toEqual([]);
  });

  it("a server whose previous release fails too is left drained and needs a human (exit 3)", async () => {
    const { balancer, servers, options, result } = setup();
    servers.failing.add("beta@r2");
    servers.failing.add("beta@r1");
    const out = await roll(options);
    expect(out.outcome).toBe("needs-human");
    expect(result("beta", out.rows)).toBe("needs human");
    expect(balancer.inRotation.get("beta")).toBe(false);
    expect(balancer.inRotation.get("alpha")).toBe(true);
  });

  it("with no release to go back to, a stop that fails needs a human instead of throwing", async () => {
    const { servers, options, result } = setup({}, { fallback: () => undefined });
    servers.failing.add("alpha@r2");
    servers.stopFails = true;
    const out = await roll(options);
    expect(out.outcome).toBe("needs-human");
    expect(result("alpha", out.rows)).toBe("needs human");
    expect(out.rows[0]?.note).toContain("stopping the app failed");
  });

  for (const during of ["alpha", "beta", "gamma"]) {
    it(`an interruption during ${during}'s gate restores it and stops; verified servers keep the new release`, async () => {
      const { balancer, servers, controller, options, result } = setup();
      servers.onActivate = (server, release) => {
        if (server === during && release === "r2") {
          controller.abort();
          servers.failing.add(`${server}@r2`);
        }
      };
      const out = await roll(options);
      expect(out.outcome).toBe("interrupted");
      const index = NAMES.indexOf(during);
      for (const [i, name] of NAMES.entries()) {
        expect(result(name, out.rows)).toBe(
          i < index ? "deployed" : i === index ? "restored" : "not reached",
        );
      }
      expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
    });
  }

  it("an interruption between batches stops before the next drain, with the last batch back in rotation", async () => {
    const { balancer, servers, controller, options, result } = setup();
    servers.onActivate = (server) => {
      if (server === "alpha") controller.abort();
    };
    const out = await roll(options);
    expect(out.outcome).toBe("interrupted");
    expect(result("alpha", out.rows)).toBe("deployed");
    expect(result("beta", out.rows)).toBe("not reached");
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
  });

  it("a drain that took effect but reported an error is undone, not mistaken for an operator's drain", async () => {
    const { balancer, options, result } = setup();
    balancer.failOn = { call: 1, applied: true };
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("not reached");
    expect(out.rows[0]?.note).toContain("not drained");
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
  });

  it("a balancer whose state cannot be read after a failed drain leaves the server to a human", async () => {
    const { balancer, options, result } = setup();
    balancer.failOn = { call: 1, applied: true };
    const apply = balancer.apply.bind(balancer);
    balancer.apply = async (change) => {
      try {
        await apply(change);
      } finally {
        balancer.stateFails = true;
      }
    };
    const out = await roll(options);
    expect(out.outcome).toBe("needs-human");
    expect(result("alpha", out.rows)).toBe("needs human");
  });

  it("an enable that fails and cannot be retried needs a human; one that took effect does not", async () => {
    const refused = setup();
    refused.balancer.failOn = { call: 4, applied: false, times: 2 };
    const out = await roll(refused.options);
    expect(
      out.outcome,
      JSON.stringify([refused.balancer.changes, out.rows, refused.events.filter((e) => e.type !== "step")]),
    ).toBe("needs-human");
    expect(refused.result("gamma", out.rows)).toBe("needs human");

    const tookEffect = setup();
    tookEffect.balancer.failOn = { call: 4, applied: true };
    const ok = await roll(tookEffect.options);
    expect(ok.outcome).toBe("success");
    expect([...tookEffect.balancer.inRotation.values()]).toEqual([true, true, true]);
  });

  it("a watch window that finds a rise rolls the batch back like a failed gate", async () => {
    const { balancer, servers, options, result } = setup(
      {},
      {
        watch: async (batch) =>
          batch[0]?.name === "beta" ? { reason: "error rate 20% (limit 1%)", action: "rollback" } : undefined,
      },
    );
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("rolled back");
    expect(result("beta", out.rows)).toBe("rolled back");
    expect(out.rows.find((r) => r.server === "beta")?.note).toContain("error rate 20%");
    expect(result("gamma", out.rows)).toBe("not reached");
    expect([...servers.current.values()]).toEqual(["r1", "r1", "r1"]);
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
  });

  it("an inconclusive watch under 'halt' stops the rollout with the batch left on the new release, in rotation", async () => {
    const { balancer, servers, options, result } = setup(
      {},
      {
        watch: async (batch) =>
          batch[0]?.name === "beta"
            ? { reason: "watch inconclusive after 60s: only 3 requests", action: "halt" }
            : undefined,
      },
    );
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    // Nothing proved the release bad: rollback-all does not undo alpha, beta stays where it is.
    expect(result("alpha", out.rows)).toBe("deployed");
    expect(result("beta", out.rows)).toBe("deployed");
    expect(out.rows.find((r) => r.server === "beta")?.note).toContain("inconclusive");
    expect(result("gamma", out.rows)).toBe("not reached");
    expect([...servers.current.values()]).toEqual(["r2", "r2", "r1"]);
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
  });

  it("a watch window that could not read the balancer's traffic rolls nothing back: the deploy stops for a human", async () => {
    const { balancer, servers, options, result, events } = setup(
      {},
      {
        watch: async (batch) =>
          batch[0]?.name === "beta"
            ? { reason: "watch: could not read the balancer's traffic for 30s", action: "needs-human" }
            : undefined,
      },
    );
    const out = await roll(options);
    expect(out.outcome).toBe("needs-human");
    // What passed its gate keeps the new release, in rotation; nothing goes back, nothing more rolls.
    expect(result("alpha", out.rows)).toBe("deployed");
    expect(result("beta", out.rows)).toBe("deployed");
    expect(out.rows.find((r) => r.server === "beta")?.note).toBe(
      "watch: could not read the balancer's traffic for 30s: not judged, deploy stopped here",
    );
    expect(result("gamma", out.rows)).toBe("not reached");
    expect([...servers.current.values()]).toEqual(["r2", "r2", "r1"]);
    expect([...balancer.inRotation.values()]).toEqual([true, true, true]);
    expect(
      events.some((e) => e.type === "error" && String(e.message).startsWith("NEEDS A HUMAN: watch")),
    ).toBe(true);
  });

  it("a balancer read that fails at the next batch's capacity guard leaves no gated server drained", async () => {
    // Transient: the read after it works, so the gated alpha goes back in, then back to r1.
    const transient = setup();
    const state = transient.balancer.state.bind(transient.balancer);
    let reads = 0;
    transient.balancer.state = async (servers) => {
      if (++reads === 2) throw new Error("lb: connection lost");
      return state(servers);
    };
    const out = await roll(transient.options);
    expect(out.outcome).toBe("failed");
    expect(transient.events).toContainEqual({
      type: "error",
      message: "the roll stopped: lb: connection lost",
    });
    expect(transient.result("alpha", out.rows)).toBe("rolled back");
    expect([...transient.balancer.inRotation.values()]).toEqual([true, true, true]);

    // Lasting: alpha is still out and nothing can say so but a human.
    const lasting = setup();
    lasting.servers.onActivate = () => {
      lasting.balancer.stateFails = true;
    };
    const stuck = await roll(lasting.options);
    expect(stuck.outcome).toBe("needs-human");
    expect(lasting.result("alpha", stuck.rows)).toBe("needs human");
    expect(stuck.rows[0]?.note).toContain("the balancer's state could not be read after the roll failed");
  });

  it("a batch whose watch window found a rise, but which cannot be drained to go back, needs a human", async () => {
    const { balancer, options, result } = setup(
      {},
      {
        watch: async (batch) => {
          if (batch[0]?.name !== "beta") return undefined;
          balancer.refuse();
          return { reason: "error rate 20% (limit 1%)", action: "rollback" };
        },
      },
    );
    const out = await roll(options);
    expect(out.outcome).toBe("needs-human");
    expect(result("beta", out.rows)).toBe("needs human");
    expect(out.rows.find((r) => r.server === "beta")?.note).toBe(
      "still on r2, in rotation: error rate 20% (limit 1%), and draining it to go back failed",
    );
  });

  it("an interruption while a batch drains puts it back as it was, untouched", async () => {
    const { balancer, servers, controller, options, result } = setup();
    const wait = balancer.waitDrained.bind(balancer);
    balancer.waitDrained = async (server, timeout, o) => {
      controller.abort();
      return wait(server, timeout, o);
    };
    // Its WebSockets stay open: no restart cut them.
    balancer.open = 2;
    balancer.connections = 2;
    const out = await roll(options);
    expect(out.outcome).toBe("interrupted");
    expect(servers.calls.filter((c) => c.startsWith("activate"))).toEqual([]);
    expect(result("alpha", out.rows)).toBe("not reached");
    expect(out.rows[0]?.connectionsCut).toBeUndefined();
    expect(out.rows[0]?.note).toBe("interrupted while it drained: left as it was");
    expect(balancer.changes).toEqual([
      { drain: ["alpha"], enable: [] },
      { drain: [], enable: ["alpha"] },
    ]);
  });

  it("an operator's drained server is updated and left drained", async () => {
    const { balancer, options, result, events } = setup();
    balancer.inRotation.set("beta", false);
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(result("beta", out.rows)).toBe("deployed");
    expect(balancer.inRotation.get("beta")).toBe(false);
    expect(events.some((e) => e.type === "warn" && e.message.includes("left drained"))).toBe(true);
  });
});

describe("the failure budget (rolling.maxFailed)", () => {
  it("is a count, or a percentage of the fleet rounded down", () => {
    expect(failureBudget(undefined, 50)).toBeUndefined();
    expect(failureBudget(2, 50)).toBe(2);
    expect(failureBudget("10%", 50)).toBe(5);
    expect(failureBudget("10%", 12)).toBe(1);
    expect(failureBudget("10%", 9)).toBe(0);
    expect(failureBudget("100%", 3)).toBe(3);
    expect(withinBudget(undefined, 0, 1)).toBe(false);
    expect(withinBudget(1, 0, 1)).toBe(true);
    expect(withinBudget(1, 1, 1)).toBe(false);
    expect(withinBudget(2, 0, 3)).toBe(false);
    expect(describeBudget("10%", 5, 2)).toBe("2 of 5 (10% of the fleet) spent");
  });

  it("a failed server within the budget goes back, stays drained, and the roll finishes the others (exit 1)", async () => {
    const { balancer, servers, options, events, result } = setup({ maxFailed: 1 });
    servers.failing.add("beta@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("deployed");
    expect(result("beta", out.rows)).toBe("failed");
    expect(result("gamma", out.rows)).toBe("deployed");
    const beta = out.rows.find((r) => r.server === "beta");
    expect(beta?.release).toBe("r1");
    expect(beta?.note).toMatch(/failed its health gate: back on r1, left out of rotation/);
    expect([...servers.current.entries()]).toEqual([
      ["alpha", "r2"],
      ["beta", "r1"],
      ["gamma", "r2"],
    ]);
    expect(balancer.inRotation.get("beta")).toBe(false);
    expect(balancer.inRotation.get("alpha")).toBe(true);
    expect(balancer.inRotation.get("gamma")).toBe(true);
    const last = events.filter((e) => e.type === "error").at(-1);
    expect(last?.type === "error" && last.message).toMatch(
      /rolling\.maxFailed, 1 of 1 spent\): beta \(failed/,
    );
  });

  it("failedServers 'in-rotation' leaves it in rotation on its previous release", async () => {
    const { balancer, servers, options, result } = setup({ maxFailed: "34%", failedServers: "in-rotation" });
    servers.failing.add("alpha@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("failed");
    expect(result("gamma", out.rows)).toBe("deployed");
    expect(balancer.inRotation.get("alpha")).toBe(true);
    expect(out.rows.find((r) => r.server === "alpha")?.note).toMatch(/back on r1, in rotation/);
  });

  it("a failure past the budget applies onFailure; the one absorbed stays where it is", async () => {
    const { servers, options, result } = setup({ maxFailed: 1 });
    servers.failing.add("alpha@r2");
    servers.failing.add("gamma@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(result("alpha", out.rows)).toBe("failed");
    expect(result("beta", out.rows)).toBe("rolled back");
    expect(result("gamma", out.rows)).toBe("rolled back");
    expect([...servers.current.values()]).toEqual(["r1", "r1", "r1"]);
  });

  it("unreachable servers count against it: over budget, nothing is touched", async () => {
    const within = setup({ maxFailed: 1 }, { unreachable: ["delta"] });
    within.servers.failing.add("beta@r2");
    const over = await roll(within.options);
    expect(over.outcome).toBe("failed");
    expect(within.result("alpha", over.rows)).toBe("rolled back");
    expect(within.result("beta", over.rows)).toBe("rolled back");

    const spent = setup({ maxFailed: 1 }, { unreachable: ["delta", "epsilon"] });
    const out = await roll(spent.options);
    expect(out.outcome).toBe("failed");
    expect(spent.balancer.changes).toEqual([]);
    expect(out.rows.every((r) => r.result === "not reached")).toBe(true);
    expect(
      spent.events.some((e) => e.type === "error" && /exceeded before the roll: 2 server/.test(e.message)),
    ).toBe(true);

    const fine = setup({ maxFailed: 1 }, { unreachable: ["delta"] });
    const done = await roll(fine.options);
    expect(done.outcome).toBe("failed");
    expect(done.rows.every((r) => r.result === "deployed")).toBe(true);
  });

  it("without a budget, servers --skip-unreachable left out fail nothing: the roll of the rest succeeds", async () => {
    const { options } = setup({}, { unreachable: ["delta"] });
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(out.rows.every((r) => r.result === "deployed")).toBe(true);
  });

  it("never absorbs a failed canary", async () => {
    const { servers, options, result } = setup({ canary: 1, maxFailed: 2 });
    servers.failing.add("alpha@r2");
    const out = await roll(options);
    expect(result("alpha", out.rows)).toBe("rolled back");
    expect(result("beta", out.rows)).toBe("not reached");
  });
});
