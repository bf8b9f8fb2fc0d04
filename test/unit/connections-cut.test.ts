import { describe, expect, it } from "vitest";
import { shutdownServerSessions } from "../../src/balancer/haproxy/runtime-api.js";
import { MultiBalancer } from "../../src/balancer/multi.js";
import type { SummaryRow } from "../../src/events/events.js";
import { formatConnectionsCut, summaryTable } from "../../src/report/format.js";
import { summaryMarkdown } from "../../src/report/github.js";
import {
  addConnectionsCut,
  connectionsCut,
  describeConnectionsCut,
} from "../../src/rollout/drain/connections-cut.js";
import { FakeBalancer, server } from "../fixtures/balancer.js";

describe("the connections a drain's timeout leaves (long-lived: WebSockets, SSE)", () => {
  it("none when drained, or when nothing but retired Nginx workers was left", () => {
    expect(connectionsCut({ drained: true, open: 0 })).toBeUndefined();
    expect(connectionsCut({ drained: false, open: 1, connections: 0 })).toBeUndefined();
    // A driver that cannot tell connections apart says nothing it cannot count.
    expect(connectionsCut({ drained: false, open: 3 })).toBeUndefined();
  });

  it("left to the restart, unless the balancer shut them", () => {
    expect(connectionsCut({ drained: false, open: 5, connections: 4 })).toEqual({
      byBalancer: 0,
      byRestart: 4,
    });
    expect(connectionsCut({ drained: false, open: 4, connections: 4, shut: 3 })).toEqual({
      byBalancer: 3,
      byRestart: 1,
    });
    // Never more shut than there were.
    expect(connectionsCut({ drained: false, open: 2, connections: 2, shut: 7 })).toEqual({
      byBalancer: 2,
      byRestart: 0,
    });
  });

  it("adds up a server's drains (a deploy, then its rollback)", () => {
    expect(addConnectionsCut(undefined, { byBalancer: 1, byRestart: 2 })).toEqual({
      byBalancer: 1,
      byRestart: 2,
    });
    expect(addConnectionsCut({ byBalancer: 1, byRestart: 2 }, { byBalancer: 3, byRestart: 0 })).toEqual({
      byBalancer: 4,
      byRestart: 2,
    });
  });

  it("says it on the drain step's line", () => {
    expect(describeConnectionsCut({ byBalancer: 12, byRestart: 0 })).toBe(
      "12 connection(s) still open at the drain timeout: 12 shut by the balancer",
    );
    expect(describeConnectionsCut({ byBalancer: 0, byRestart: 3 })).toBe(
      "3 connection(s) still open at the drain timeout: 3 left to the restart (the app closes them on SIGINT)",
    );
    expect(describeConnectionsCut({ byBalancer: 2, byRestart: 1 })).toBe(
      "3 connection(s) still open at the drain timeout: 2 shut by the balancer, 1 left to the restart (the app closes them on SIGINT)",
    );
  });

  it("HAProxy's runtime API command", () => {
    expect(shutdownServerSessions("app", "web-1")).toBe("shutdown sessions server app/web-1");
  });

  it("an HA pair adds up what each balancer counted and shut", async () => {
    const alpha = server("alpha");
    const [a, b] = [new FakeBalancer("lb1", ["alpha"]), new FakeBalancer("lb2", ["alpha"])];
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10)).toEqual({ drained: true, open: 0 });
    a.open = 3;
    a.connections = 2;
    b.open = 4;
    b.connections = 4;
    b.canShut = true;
    expect(await new MultiBalancer([a, b]).waitDrained(alpha, 10, { shutAtTimeout: true })).toMatchObject({
      drained: false,
      open: 7,
      connections: 6,
      shut: 4,
    });
    expect(a.waitOptions).toEqual([undefined, { shutAtTimeout: true }]);
  });
});

describe("the summary's connections cut column", () => {
  const rows: SummaryRow[] = [
    { server: "alpha", result: "deployed", connectionsCut: { byBalancer: 0, byRestart: 9 } },
    { server: "beta", result: "deployed", connectionsCut: { byBalancer: 4, byRestart: 1 } },
    { server: "gamma", result: "deployed" },
  ];

  it("only when a drain's timeout cut some", () => {
    expect(summaryTable([{ server: "a", result: "deployed" }])[0]).not.toMatch(/connections cut/);
    const table = summaryTable(rows);
    expect(table[0]).toMatch(/^server\s+result\s+release\s+out of rotation\s+connections cut\s+note$/);
    expect(table[2]).toMatch(/^alpha\s+deployed\s+-\s+-\s+9 \(restart\)$/);
    expect(table[3]).toMatch(/^beta\s+deployed\s+-\s+-\s+4 \(balancer\) \+ 1 \(restart\)$/);
    expect(table[4]).toMatch(/^gamma\s+deployed\s+-\s+-\s+-$/);
  });

  it("cells", () => {
    expect(formatConnectionsCut(undefined)).toBe("-");
    expect(formatConnectionsCut({ byBalancer: 0, byRestart: 0 })).toBe("0");
    expect(formatConnectionsCut({ byBalancer: 30, byRestart: 0 })).toBe("30 (balancer)");
  });

  it("in GitHub's step summary too", () => {
    const markdown = summaryMarkdown("deploy", {
      type: "summary",
      outcome: "success",
      rows,
      exitCode: 0,
      seconds: 12,
    });
    expect(markdown).toContain("| server | result | release | out of rotation | connections cut | note |");
    expect(markdown).toContain("| alpha | deployed | - | - | 9 (restart) |  |");
  });
});
