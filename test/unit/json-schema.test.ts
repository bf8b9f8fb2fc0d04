import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../src/config/json-schema.js";

describe("config.schema.json", () => {
  it("is the schema generated from the zod config (run npm run build after changing it)", () => {
    const committed = JSON.parse(readFileSync(new URL("../../config.schema.json", import.meta.url), "utf8"));
    expect(committed).toEqual(configJsonSchema());
  });

  it("refuses unknown keys so editors flag typos", () => {
    const schema = configJsonSchema() as {
      additionalProperties?: boolean;
      properties: Record<string, unknown>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toContain("balancer");
  });
});
