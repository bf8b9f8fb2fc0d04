import { describe, expect, it } from "vitest";
import { terminalWidth, wantsInteractiveOutput } from "../../src/report/terminal.js";

describe("interactive output", () => {
  it("only on a terminal with a real width", () => {
    expect(terminalWidth({ isTTY: true, columns: 120 })).toBe(120);
    for (const columns of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, undefined]) {
      expect(terminalWidth({ isTTY: true, columns }), String(columns)).toBeUndefined();
    }
    expect(terminalWidth({ isTTY: false, columns: 80 })).toBeUndefined();
  });

  it("not with 0 columns, in CI, or with --plain", () => {
    const tty = { isTTY: true, columns: 80 };
    expect(wantsInteractiveOutput(tty, {}, false)).toBe(true);
    expect(wantsInteractiveOutput({ isTTY: true, columns: 0 }, {}, false)).toBe(false);
    expect(wantsInteractiveOutput(tty, { CI: "true" }, false)).toBe(false);
    expect(wantsInteractiveOutput(tty, {}, true)).toBe(false);
  });
});
