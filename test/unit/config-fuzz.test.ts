import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { resolveConfig } from "../../src/config/load.js";
import { parseConfigText, problemPath, withPositions } from "../../src/config/positions.js";

const VALID = {
  app: { name: "api", root: ".", start: "server.js", port: 3000, exclude: ["*.tmp"] },
  servers: [
    { name: "a", host: "10.0.0.1", port: 22, env: { A: "1" } },
    { name: "b", host: "10.0.0.2" },
  ],
  ssh: { user: "deploy", knownHosts: "~/.ssh/known_hosts", hostKeys: "strict" },
  deployPath: "/srv/api",
  pm2: { env: { NODE_ENV: "production" }, killTimeout: "5s" },
  balancer: { host: "a", upstreamFile: "/etc/nginx/upstream.conf", drainTimeout: "10s" },
  health: { path: "/health", passes: 2, interval: "100ms", deadline: "30s" },
  rolling: { batchSize: "50%", onFailure: "halt", canary: 1 },
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path into the valid config, so mutations can hit any field at any depth. */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) out.push(...paths(v, [...prefix, i]));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  }
  return out;
}

const ALL_PATHS = paths(VALID as unknown as Json).filter((p) => p.length > 0);

const weird: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -70000, max: 70000 }),
  fc.double(),
  fc.string(),
  fc.constantFrom("", "22a", "-1s", "100%", "$(touch /tmp/x)", "__proto__", "constructor", "~", "../../etc"),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string(), { maxKeys: 3 }),
);

const mutation = fc.record({
  path: fc.constantFrom(...ALL_PATHS),
  action: fc.constantFrom("set", "delete", "addKey"),
  value: weird,
  key: fc.string({ minLength: 1, maxLength: 10 }),
});

function apply(
  config: Json,
  m: { path: (string | number)[]; action: string; value: Json; key: string },
): void {
  let parent = config as Record<string | number, Json>;
  for (const step of m.path.slice(0, -1)) {
    const next = parent[step];
    if (!next || typeof next !== "object") return;
    parent = next as Record<string | number, Json>;
  }
  const last = m.path.at(-1) as string | number;
  if (m.action === "delete") delete parent[last];
  else if (m.action === "set") parent[last] = m.value;
  else {
    const target = parent[last];
    if (target && typeof target === "object" && !Array.isArray(target))
      (target as Record<string, Json>)[m.key] = m.value;
  }
}

describe("config loader under random mutations", () => {
  it("never throws anything but a ConfigError, and every problem names a path", () => {
    let placed = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const config = structuredClone(VALID) as unknown as Json;
        for (const m of mutations) apply(config, m);
        try {
          resolveConfig(config, "deploy.config.json", "/project");
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          const { problems, message } = error as ConfigError;
          expect(problems.length).toBeGreaterThan(0);
          for (const problem of problems) {
            // "servers[1].port: …", "(top level): …", 'servers[0].env["a b"]: …'
            expect(problem).toMatch(/^(\(top level\)|[$A-Za-z_][\w$]*|\[)[^\n]*?: \S/);
            expect(problemPath(problem), problem).toBeDefined();
          }
          // ...so that each is placed at a line and column of the file (every 10th case: parsing
          // the text again for each of the 1,500 would double the test's time).
          if (placed++ % 10 !== 0) return;
          const text = JSON.stringify(config, null, 2);
          const located = withPositions(error as ConfigError, parseConfigText(text, "deploy.config.json"));
          expect(located.locations.filter(Boolean)).toHaveLength(problems.length);
          expect(message).not.toMatch(/\n\s+at /);
        }
      }),
      { numRuns: 1500, seed: 20261126 },
    );
  });

  it("non-object documents are refused with a message", () => {
    for (const doc of [null, 42, "x", [], true]) {
      expect(() => resolveConfig(doc, "deploy.config.json", "/p")).toThrow(ConfigError);
    }
  });
});
