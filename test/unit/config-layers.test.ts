import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { destinationFile, destinationProblem, mergeLayers, ownerOf } from "../../src/config/layers.js";
import { loadConfig } from "../../src/config/load.js";
import { UsageError } from "../../src/errors.js";

describe("destination layers: merge", () => {
  it("merges objects key by key and replaces arrays and values whole", () => {
    const base = {
      app: { name: "api", port: 3000, exclude: ["a", "b"] },
      servers: [{ name: "p1" }, { name: "p2" }],
      rolling: { batchSize: 2, watch: { duration: "1m" } },
    };
    const overlay = {
      app: { port: 4000, exclude: ["c"] },
      servers: [{ name: "s1" }],
      rolling: { watch: { duration: 0 } },
    };
    expect(mergeLayers(base, overlay)).toEqual({
      app: { name: "api", port: 4000, exclude: ["c"] },
      servers: [{ name: "s1" }],
      rolling: { batchSize: 2, watch: { duration: 0 } },
    });
    // Neither input is changed.
    expect(base.app.port).toBe(3000);
  });

  it("an object replaces a value that is not one, and the other way round", () => {
    expect(mergeLayers({ servers: [{ name: "a" }] }, { servers: { fromCommand: "x" } })).toEqual({
      servers: { fromCommand: "x" },
    });
    expect(mergeLayers({ balancer: { host: "a" } }, { balancer: [{ host: "b" }] })).toEqual({
      balancer: [{ host: "b" }],
    });
    expect(mergeLayers({ deployPath: "/a" }, { deployPath: null })).toEqual({ deployPath: null });
  });

  it("places a path in the layer its value came from", () => {
    const base = { app: { name: "api", port: 3000 }, servers: [{ name: "p1" }], health: { path: "/h" } };
    const overlay = { app: { port: "x" }, servers: [{ name: "s1" }, { host: "b" }] };
    expect(ownerOf([base, overlay], ["app", "port"])).toBe(1);
    expect(ownerOf([base, overlay], ["app", "name"])).toBe(0);
    expect(ownerOf([base, overlay], ["servers", 1, "name"])).toBe(1); // required, missing: the overlay's list
    expect(ownerOf([base, overlay], ["health", "path"])).toBe(0);
    expect(ownerOf([base, overlay], ["app", "start"])).toBe(1); // missing in both: the top layer's app
    expect(ownerOf([base, overlay], ["notify"])).toBe(1);
    expect(ownerOf([base], ["servers", 0, "name"])).toBe(0);
  });

  it("names the overlay deploy.<name>.json beside the base, and refuses odd names", () => {
    expect(destinationFile("/p", "staging")).toBe("/p/deploy.staging.json");
    expect(destinationProblem("staging")).toBeUndefined();
    expect(destinationProblem("eu-west_2")).toBeUndefined();
    expect(destinationProblem("../x")).toMatch(/not a destination name/);
    expect(destinationProblem("")).toMatch(/not a destination name/);
    expect(destinationProblem("config")).toMatch(/base file/);
  });
});

describe("loadConfig with a destination", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-layers-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = path.join(dir, "deploy.config.json");
  writeFileSync(
    base,
    `{
  "app": { "name": "api", "root": "app" },
  "servers": [{ "name": "p1", "host": "10.0.0.1" }, { "name": "p2", "host": "10.0.0.2" }],
  "balancer": { "host": "p1", "upstreamFile": "/etc/nginx/api.conf" },
  "pm2": { "env": { "NODE_ENV": "production", "A": "1" } }
}
`,
  );
  const write = (name: string, text: string) => writeFileSync(path.join(dir, `deploy.${name}.json`), text);
  write(
    "staging",
    `{
  // staging: one server
  "servers": [{ "name": "s1", "host": "10.1.0.1" }],
  "balancer": { "host": "s1" },
  "pm2": { "env": { "NODE_ENV": "staging" } },
}
`,
  );
  write(
    "broken",
    `{
  "servers": [
    { "name": "s1", "host": "10.1.0.1", "port": "22" }
  ],
  "balancer": { "host": "s1" }
}
`,
  );
  write("syntax", `{ "servers": [ }`);

  const error = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e as Error;
    }
    throw new Error("expected an error");
  };

  it("reads the base, then the overlay on top", () => {
    const config = loadConfig(base, {}, { destination: "staging" });
    expect(config.destination).toBe("staging");
    expect(config.files.map((f) => path.basename(f))).toEqual(["deploy.config.json", "deploy.staging.json"]);
    expect(config.servers.map((s) => s.name)).toEqual(["s1"]);
    expect(config.balancer.host).toBe("s1");
    expect(config.balancer).toMatchObject({ upstreamFile: "/etc/nginx/api.conf" });
    expect(config.servers[0]?.env).toEqual({ NODE_ENV: "staging", A: "1" });
    expect(config.app.root).toBe(path.join(dir, "app"));
    expect(loadConfig(base, {}).servers.map((s) => s.name)).toEqual(["p1", "p2"]);
  });

  it("places a problem in the overlay at its line and column, exit 2", () => {
    const e = error(() => loadConfig(base, {}, { destination: "broken" })) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/deploy\.broken\.json:3:41: servers\[0\]\.port: expected a number/);
  });

  it("a syntax error in the overlay, a missing overlay, a bad name", () => {
    expect(error(() => loadConfig(base, {}, { destination: "syntax" })).message).toMatch(
      /deploy\.syntax\.json:1:16: invalid JSON/,
    );
    const missing = error(() => loadConfig(base, {}, { destination: "prod" }));
    expect(missing).toBeInstanceOf(ConfigError);
    expect(missing.message).toMatch(/deploy\.prod\.json: file not found/);
    const bad = error(() => loadConfig(base, {}, { destination: "../etc" }));
    expect(bad).toBeInstanceOf(UsageError);
    expect((bad as UsageError).exitCode).toBe(2);
  });

  it("-c -: the text from stdin, paths relative to the current directory", () => {
    const text = `{"app": {"name": "api"}, "servers": [{"name": "a", "host": "h"}], "balancer": {"host": "a", "upstreamFile": "/u"}}`;
    const config = loadConfig("-", {}, { readStdin: () => text });
    expect(config.file).toBe("(stdin)");
    expect(config.app.root).toBe(process.cwd());
    const bad = error(() => loadConfig("-", {}, { readStdin: () => `{\n "app": {"name": 3}}` }));
    expect(bad.message).toMatch(/^\(stdin\):2:10: app\.name: expected a string/m);
  });
});
