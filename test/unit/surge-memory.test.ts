import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  MEM_AVAILABLE_SCRIPT,
  megabytes,
  readMemAvailable,
  surgeMemoryShortfall,
} from "../../src/remote/memory.js";

describe("the surge strategy's memory preflight", () => {
  it("needs the serving instances' RSS again, plus a fifth, within MemAvailable", () => {
    const mb = 1024 * 1024;
    expect(surgeMemoryShortfall(1000 * mb, 500 * mb)).toBe(0);
    expect(surgeMemoryShortfall(600 * mb, 500 * mb)).toBe(0);
    expect(surgeMemoryShortfall(500 * mb, 500 * mb)).toBe(100 * mb);
    expect(megabytes(100 * mb)).toBe("100 MB");
  });

  it("reads MemAvailable in kB as bytes, and nothing as unknown", () => {
    const op = readMemAvailable();
    const ok = (stdout: string) => op.parse({ code: 0, stdout, stderr: "" }, "alpha");
    expect(ok("2048\n")).toBe(2048 * 1024);
    expect(ok("")).toBeUndefined();
    expect(() => op.parse({ code: 1, stdout: "", stderr: "boom" }, "alpha")).toThrow(/alpha/);
  });

  it("its script prints this machine's MemAvailable in kB under sh", () => {
    const out = execFileSync("sh", ["-c", MEM_AVAILABLE_SCRIPT, "nexus"], { encoding: "utf8" }).trim();
    expect(out).toMatch(/^\d+$/);
    expect(Number(out)).toBeGreaterThan(0);
  });
});
