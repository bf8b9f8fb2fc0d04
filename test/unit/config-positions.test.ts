import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { resolveConfig } from "../../src/config/load.js";
import {
  lineColumn,
  locate,
  parseConfigText,
  problemPath,
  withPositions,
} from "../../src/config/positions.js";

const TEXT = `{
  // comments are fine
  "app": { "name": "api", "port": "3000x" },
  "servers": [
    { "name": "a", "host": "10.0.0.1", "prot": 22 },
    { "name": "b" },
  ],
  "pm2": { "env": { "A-B": 1 } },
  "balancer": { "host": "a", "upstreamFile": "/etc/nginx/x.conf" }
}
`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("config positions", () => {
  it("reads JSON with comments and trailing commas", () => {
    const parsed = parseConfigText(TEXT, "c.json");
    expect((parsed.data as { servers: unknown[] }).servers).toHaveLength(2);
  });

  it("a syntax error names its line and column", () => {
    const error = errorOf(() => parseConfigText('{\n  "app": { "name": "x" }\n  "servers": []\n}', "c.json"));
    expect(error.message).toBe('c.json:3:3: invalid JSON: expected ","');
    expect(error.locations).toEqual([{ line: 3, column: 3 }]);
  });

  it("reads back the path every problem starts with", () => {
    expect(problemPath("servers[1].port: expected a number")).toEqual(["servers", 1, "port"]);
    expect(problemPath('pm2.env["A-B"]: expected a string')).toEqual(["pm2", "env", "A-B"]);
    expect(problemPath("balancer[0]: is the same balancer as balancer[1]")).toEqual(["balancer", 0]);
    expect(problemPath("(top level): expected an object")).toEqual([]);
    expect(problemPath("invalid JSON: expected a value")).toBeUndefined();
    expect(problemPath("servers[1]port: x")).toBeUndefined();
  });

  it("places each schema problem at the key of the field it names, a missing field at the object that lacks it", () => {
    const parsed = parseConfigText(TEXT, "c.json");
    const error = withPositions(
      errorOf(() => resolveConfig(parsed.data, "c.json", "/p")),
      parsed,
    );
    const at = (problem: RegExp) => {
      const i = error.problems.findIndex((p) => problem.test(p));
      expect(i, `${problem} in ${error.problems.join("\n")}`).toBeGreaterThanOrEqual(0);
      return error.locations[i];
    };
    expect(at(/^app\.port: expected a number/)).toEqual(lineColumn(TEXT, TEXT.indexOf('"port": "3000x"')));
    expect(at(/^servers\[0\]\.prot: unknown key \(did you mean "port"\?\)/)).toEqual({ line: 5, column: 40 });
    expect(at(/^servers\[1\]\.host: is required/)).toEqual({ line: 6, column: 5 });
    expect(at(/^pm2\.env\["A-B"\]/)).toEqual({ line: 8, column: 21 });
    expect(error.message).toContain("c.json:5:40: servers[0].prot: unknown key");
  });

  it("locate falls back to the nearest enclosing value", () => {
    const parsed = parseConfigText(TEXT, "c.json");
    expect(locate(parsed, ["app", "missing", "deeper"])).toEqual({ line: 3, column: 3 });
  });
});
