import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { inventoryFrom, parseInventory, quoteOutput } from "../../src/config/inventory.js";
import { loadConfig } from "../../src/config/load.js";

const ok = { status: 0, signal: null, stderr: "", timeout: 60_000 } as const;

describe("inventory output", () => {
  it("reads a JSON array of servers, or an object whose servers is one", () => {
    expect(parseInventory('[{"name": "a", "host": "h"}]')).toEqual({ servers: [{ name: "a", host: "h" }] });
    expect(parseInventory('{"servers": [{"name": "a"}]}\n')).toEqual({ servers: [{ name: "a" }] });
  });

  it("says what is wrong and quotes what was printed", () => {
    expect(parseInventory("hello")).toMatchObject({
      problem: expect.stringMatching(/not JSON.*printed "hello"/),
    });
    expect(parseInventory('{"a": 1}')).toMatchObject({
      problem: expect.stringMatching(/expected a JSON array of servers.*printed "\{\\"a\\": 1\}"/),
    });
    expect(parseInventory("[]")).toEqual({ problem: "it printed an empty list of servers" });
    expect(parseInventory("")).toMatchObject({ problem: expect.stringMatching(/printed nothing$/) });
    expect(quoteOutput("x".repeat(1000))).toHaveLength(300 + 3);
  });

  it("a command that fails, is killed or times out says so with its stderr", () => {
    expect(inventoryFrom({ ...ok, status: 3, stdout: "", stderr: "no creds\n" })).toEqual({
      problem: 'it exited with code 3; stderr: "no creds"',
    });
    expect(inventoryFrom({ ...ok, status: null, signal: "SIGTERM", stdout: "" })).toEqual({
      problem: "it was killed by SIGTERM",
    });
    const timedOut = Object.assign(new Error("spawnSync /bin/sh ETIMEDOUT"), { code: "ETIMEDOUT" });
    expect(inventoryFrom({ ...ok, status: null, signal: "SIGKILL", stdout: "", error: timedOut })).toEqual({
      problem: "it did not finish within 60s",
    });
  });
});

describe("servers.fromCommand in a config", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-inventory-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    path.join(dir, "inv.sh"),
    `#!/bin/sh
case "$1" in
  good) echo '[{"name": "a", "host": "10.0.0.1"}, {"name": "b", "host": "10.0.0.2", "env": {"T": {"fromEnv": "TOKEN"}}}]' ;;
  badport) echo '[{"name": "a", "host": "10.0.0.1", "port": "x"}]' ;;
  fail) echo "cannot reach the cloud API" >&2; exit 4 ;;
  *) echo "usage: inv.sh good|badport|fail" ;;
esac
`,
    { mode: 0o755 },
  );
  const configWith = (servers: unknown, name = "deploy.config.json") => {
    const file = path.join(dir, name);
    writeFileSync(
      file,
      JSON.stringify(
        { app: { name: "api" }, servers, balancer: { host: "a", upstreamFile: "/etc/nginx/u.conf" } },
        null,
        2,
      ),
    );
    return file;
  };
  const problemOf = (file: string) => {
    try {
      loadConfig(file, { TOKEN: "t0k" });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      return (error as ConfigError).message;
    }
    throw new Error("expected a ConfigError");
  };

  it("runs the command in the config's directory and uses its servers", () => {
    const config = loadConfig(configWith({ fromCommand: "./inv.sh good" }), { TOKEN: "t0k" });
    expect(config.servers.map((s) => s.host)).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(config.servers[1]?.env).toEqual({ T: "t0k" });
    expect(config.inventory).toBe("./inv.sh good");
  });

  it("names the command and its output when it goes wrong", () => {
    expect(problemOf(configWith({ fromCommand: "./inv.sh fail" }))).toMatch(
      /deploy\.config\.json:\d+:\d+: servers\.fromCommand: `\.\/inv\.sh fail`: it exited with code 4; stderr: "cannot reach the cloud API"/,
    );
    expect(problemOf(configWith({ fromCommand: "./inv.sh" }))).toMatch(
      /`\.\/inv\.sh`: its output is not JSON; it printed "usage: inv\.sh good\|badport\|fail"/,
    );
    expect(problemOf(configWith({ fromCommand: "./inv.sh badport" }))).toMatch(
      /servers\[0\]\.port: expected a number, received "x" \(a server printed by `\.\/inv\.sh badport`\)/,
    );
    expect(problemOf(configWith({ fromCommand: "./inv.sh good", timout: "5s" }))).toMatch(
      /servers\.timout: unknown key \(did you mean "timeout"\?\)/,
    );
    expect(problemOf(configWith({ fromCommand: "sleep 5", timeout: "100ms" }))).toMatch(
      /`sleep 5`: it did not finish within 0\.1s/,
    );
  });
});
