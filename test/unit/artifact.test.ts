import { describe, expect, it } from "vitest";
import { ALWAYS_EXCLUDED, compileExcludes } from "../../src/artifact/exclude.js";
import { makeReleaseId } from "../../src/artifact/release-id.js";
import { formatDuration, parseDuration } from "../../src/config/duration.js";

describe("artifact exclusions", () => {
  const excluded = compileExcludes([
    ...ALWAYS_EXCLUDED,
    "coverage/",
    "*.tmp",
    "/local-only",
    "docs/**/*.psd",
  ]);
  it("leaves out dependencies, logs and VCS data at any depth", () => {
    for (const p of [
      "node_modules",
      "./node_modules/x/index.js",
      "lib/node_modules/y",
      ".git/HEAD",
      "logs/a.txt",
      "app.log",
      "src/debug.log",
    ]) {
      expect(excluded(p), p).toBe(true);
    }
  });
  it("applies gitignore-like patterns", () => {
    expect(excluded("coverage/index.html")).toBe(true);
    expect(excluded("a/b/c.tmp")).toBe(true);
    expect(excluded("local-only")).toBe(true);
    expect(excluded("src/local-only")).toBe(false);
    expect(excluded("docs/art/x/y.psd")).toBe(true);
  });
  it("keeps the app", () => {
    for (const p of [
      "server.js",
      "src/catalog.js",
      "package.json",
      "package-lock.json",
      "logsmith.js",
      "blog/post.md",
    ]) {
      expect(excluded(p), p).toBe(false);
    }
  });
});

describe("release ids and durations", () => {
  it("UTC time, short commit, dirty mark", () => {
    const at = new Date(Date.UTC(2026, 10, 26, 20, 45, 1, 123));
    expect(makeReleaseId(at)).toBe("20261126T204501Z");
    expect(makeReleaseId(at, { commit: "1a2b3c4", dirty: false })).toBe("20261126T204501Z-1a2b3c4");
    expect(makeReleaseId(at, { commit: "1a2b3c4", dirty: true })).toBe("20261126T204501Z-1a2b3c4-dirty");
  });
  it("parses durations with units", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration("soon")).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(formatDuration(30_000)).toBe("30s");
  });
});
