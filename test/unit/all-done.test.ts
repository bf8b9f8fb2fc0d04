import { describe, expect, it } from "vitest";
import { allDone } from "../../src/util/all-done.js";

describe("allDone", () => {
  it("rejects with the first failure only once every promise has settled", async () => {
    let slowDone = false;
    const slow = new Promise<number>((resolve) =>
      setTimeout(() => {
        slowDone = true;
        resolve(2);
      }, 20),
    );
    await expect(allDone([Promise.reject(new Error("first")), slow])).rejects.toThrow("first");
    expect(slowDone).toBe(true);
    expect(await allDone([Promise.resolve(1), slow])).toEqual([1, 2]);
  });
});
