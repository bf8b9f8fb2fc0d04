import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { batchCount, chunk, describePlan, makePlan, PlanError } from "../../src/deploy/plan.js";

function config(rolling: Record<string, unknown> = {}, servers = 3) {
  return resolveConfig(
    {
      app: { name: "api" },
      servers: Array.from({ length: servers }, (_, i) => ({ name: `s${i + 1}`, host: `10.0.0.${i + 1}` })),
      deployPath: "/srv/api",
      balancer: { host: "s1", upstreamFile: "/etc/nginx/upstream.conf" },
      rolling,
    },
    "deploy.config.json",
    "/p",
  );
}

const names = (batches: { name: string }[][]) => batches.map((b) => b.map((s) => s.name));

describe("planner", () => {
  it("resolves batch sizes from counts and percentages", () => {
    expect(batchCount(1, 3)).toBe(1);
    expect(batchCount(5, 3)).toBe(3);
    expect(batchCount("25%", 12)).toBe(3);
    expect(batchCount("25%", 3)).toBe(1);
    expect(batchCount("50%", 6)).toBe(3);
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("one server at a time by default", () => {
    const plan = makePlan(config(), "r1");
    expect(names(plan.batches)).toEqual([["s1"], ["s2"], ["s3"]]);
    expect(plan.minInRotation).toBe(1);
    expect(plan.canary).toBe(false);
  });

  it("a canary batch first, then the configured batch size", () => {
    const plan = makePlan(config({ canary: 1, batchSize: 2 }, 5), "r1");
    expect(names(plan.batches)).toEqual([["s1"], ["s2", "s3"], ["s4", "s5"]]);
    expect(plan.canary).toBe(true);
  });

  it("--only keeps config order and rejects unknown names", () => {
    expect(names(makePlan(config(), "r1", ["s3", "s1"]).batches)).toEqual([["s1"], ["s3"]]);
    expect(() => makePlan(config(), "r1", ["s9"])).toThrow(PlanError);
  });

  it("refuses batches that cannot keep the capacity floor", () => {
    expect(() => makePlan(config({ batchSize: 3 }), "r1")).toThrow(/cannot keep 1 of 3/);
    expect(() => makePlan(config({ batchSize: 2, minInRotation: 2 }), "r1")).toThrow(/cannot keep 2 of 3/);
    expect(makePlan(config({ batchSize: 1 }, 1), "r1").minInRotation).toBe(0);
  });

  it("describes each batch and the failure policy", () => {
    const c = config({ canary: 1, pause: "5s", onFailure: "halt" });
    const lines = describePlan(c, makePlan(c, "r1"));
    expect(lines).toContain("3. canary batch: drain s1; switch; restart; health gate; enable");
    expect(lines).toContain("4. batch 2: after a 5s pause, drain s2; switch; restart; health gate; enable");
    expect(lines.at(-1)).toContain("restore the previous release on that batch, halt");
    expect(lines.at(-2)).toContain("at least 1 other server(s) in rotation");
  });

  it("shows each batch's watch window, the first one's longer with rolling.watch.canary", () => {
    const c = config({ canary: 1, watch: { duration: "10s", canary: "30s", inconclusive: "halt" } });
    const lines = describePlan(c, makePlan(c, "r1"));
    expect(lines).toContain("3. canary batch: drain s1; switch; restart; health gate; enable; watch 30s");
    expect(lines).toContain("4. batch 2: drain s2; switch; restart; health gate; enable; watch 10s");
    expect(lines).toContain(
      "watch: errors and latency at the balancer against the untouched servers; inconclusive after 20s: halt",
    );
  });
});
