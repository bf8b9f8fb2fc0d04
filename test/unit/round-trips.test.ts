import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { layout } from "../../src/remote/layout.js";
import type { RemoteOp } from "../../src/remote/op.js";
import * as state from "../../src/remote/server-state.js";

/**
 * Ops that do in one exchange what took several (issue 30: few round trips), run under `sh` as
 * the server would run them.
 */
function run<T>(op: RemoteOp<T>): T {
  const result = spawnSync("sh", ["-c", op.command], {
    encoding: "utf8",
    input: op.stdin ?? "",
    timeout: 20_000,
  });
  return op.parse({ code: result.status, stdout: result.stdout, stderr: result.stderr }, "test");
}

describe("taking the lock and reading the state in one exchange", () => {
  it("reads the state once the lock is taken", () => {
    const l = layout(path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-li ")), "srv"));
    mkdirSync(l.release("20260101T000000Z-a"), { recursive: true });
    const taken = run(state.lockAndInspect(l, '{"token":"aaaa1111"}'));
    expect(taken.attempt).toEqual({ acquired: true });
    expect(taken.state?.releases.map((r) => r.id)).toEqual(["20260101T000000Z-a"]);
    // Read under the lock just taken: the holder it names is this one.
    expect(taken.state?.lock).toBe('{"token":"aaaa1111"}');
  });

  it("names the other holder, and reads nothing for this one", () => {
    const l = layout(path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-li ")), "srv"));
    run(state.lockAcquire(l, '{"token":"aaaa1111"}'));
    expect(run(state.lockAndInspect(l, '{"token":"bbbb2222"}'))).toEqual({
      attempt: { acquired: false, holder: '{"token":"aaaa1111"}' },
    });
  });

  it("a lock that cannot be written is an error, not a held lock", () => {
    const l = layout(path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-li ")), "srv"));
    mkdirSync(path.dirname(l.state), { recursive: true });
    writeFileSync(l.state, "a file where the state directory goes");
    expect(() => run(state.lockAndInspect(l, '{"token":"aaaa1111"}'))).toThrow(
      /taking the deploy lock failed/,
    );
  });
});

describe("runOps", () => {
  it("runs ops one after the other on a runner without a remote shell, each result apart", async () => {
    const order: string[] = [];
    const runner = {
      name: "fake",
      exec: async (command: string) => {
        order.push(`start ${command}`);
        await new Promise((r) => setTimeout(r, command === "a" ? 30 : 1));
        order.push(`end ${command}`);
        return { code: command === "b" ? 1 : 0, stdout: command, stderr: "" };
      },
      run: async () => "",
    };
    const op = (name: string): RemoteOp<string> => ({
      what: name,
      command: name,
      parse: (result) => {
        if (result.code !== 0) throw new Error(`${name} failed`);
        return result.stdout;
      },
    });
    const { runOps } = await import("../../src/remote/op.js");
    const results = await runOps(runner, [op("a"), op("b"), op("c")]);
    expect(order).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([
      "a",
      "b failed",
      "c",
    ]);
  });
});
