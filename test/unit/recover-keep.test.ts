import { describe, expect, it } from "vitest";
import { servesOnly, servingAt } from "../../src/deploy/recover-keep.js";

const app = { port: 3000, surgePort: 3001 };
const backend = (over: Record<string, unknown> = {}) => ({
  server: "nexus-beta",
  upstream: "10.0.0.2:3000",
  present: true,
  inRotation: true,
  address: "10.0.0.2:3000",
  ...over,
});

describe("recover keeps a process that still serves the target", () => {
  it("reads the port the balancer sends the server's traffic to, in rotation, on one of the app's ports", () => {
    expect(servingAt(backend(), app)).toBe(3000);
    expect(servingAt(backend({ address: "[::1]:3001" }), app)).toBe(3001);
    // Drained (an operator, or the killed command), absent, elsewhere or unknown: the usual switch back.
    expect(servingAt(backend({ inRotation: false }), app)).toBeUndefined();
    expect(servingAt(backend({ present: false }), app)).toBeUndefined();
    expect(servingAt(backend({ address: "10.0.0.2:8080" }), app)).toBeUndefined();
    expect(servingAt(backend({ address: undefined }), app)).toBeUndefined();
    expect(servingAt(undefined, app)).toBeUndefined();
  });

  it("keeps only when every instance is online on the target (an older nexus's process says no release)", () => {
    const instance = { name: "app", pid: 1, status: "online", restarts: 0, release: "r1" };
    expect(servesOnly([instance, { ...instance, pid: 2 }], "r1")).toBe(true);
    expect(servesOnly([instance, { ...instance, pid: 2, release: "r2" }], "r1")).toBe(false);
    expect(servesOnly([{ ...instance, status: "errored" }], "r1")).toBe(false);
    expect(servesOnly([{ ...instance, release: undefined }], "r1")).toBe(false);
    expect(servesOnly([], "r1")).toBe(false);
  });
});
