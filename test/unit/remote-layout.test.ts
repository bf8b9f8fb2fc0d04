import { describe, expect, it } from "vitest";
import { isValidReleaseId, resolveRemotePath } from "../../src/remote/layout.js";

describe("resolveRemotePath", () => {
  it("resolves ~ and ~/ against the remote home, and leaves absolute paths alone", () => {
    expect(resolveRemotePath("~", "/home/deploy")).toBe("/home/deploy");
    expect(resolveRemotePath("~/apps/shop", "/home/deploy")).toBe("/home/deploy/apps/shop");
    expect(resolveRemotePath("/srv/shop", "")).toBe("/srv/shop");
  });

  it.each([
    ["", /\$HOME is empty/],
    ["home/deploy", /"home\/deploy", not an absolute path/],
  ])("refuses a home-relative path when $HOME is %j", (home, message) => {
    expect(() => resolveRemotePath("~/apps/shop", home)).toThrow(message);
    expect(() => resolveRemotePath("~", home)).toThrow(/configure an absolute path/);
  });
});

describe("isValidReleaseId", () => {
  it("accepts the ids nexus makes and refuses path tricks", () => {
    expect(isValidReleaseId("20261206T012612Z-after-setup-e63c")).toBe(true);
    for (const id of ["", ".", "..", "../x", "a/b", "-rf", "a b", "x".repeat(129)])
      expect(isValidReleaseId(id)).toBe(false);
  });
});
