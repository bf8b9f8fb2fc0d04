import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { inventoryFrom, inventoryRedactor, parseInventory, quoteOutput } from "../../src/config/inventory.js";
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

describe("what an error quotes of an inventory's output", () => {
  it("is its first lines only, cut when long, saying how many lines were left out", () => {
    const lines = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n");
    expect(quoteOutput(lines)).toBe('"line 1\\nline 2\\nline 3\\nline 4\\nline 5" (and 15 more lines)');
    expect(quoteOutput("a\nb\nc\nd\ne\nf")).toBe('"a\\nb\\nc\\nd\\ne" (and 1 more line)');
    const wide = quoteOutput(`${"y".repeat(400)}\n${"z".repeat(10)}`);
    expect(wide).toBe(`"${"y".repeat(300)}…"`);
    expect(inventoryFrom({ ...ok, status: 1, stdout: "", stderr: `${lines}\n` })).toEqual({
      problem:
        'it exited with code 1; stderr: "line 1\\nline 2\\nline 3\\nline 4\\nline 5" (and 15 more lines)',
    });
  });

  const config = {
    pm2: {
      env: {
        NODE_ENV: "production",
        API_TOKEN: { fromEnv: "TOKEN" },
        DB_PASSWORD: "hunter2-literal",
        DATABASE_URL: "postgres://app:pw-in-url@db/prod",
      },
    },
    notify: [{ url: "https://hooks.example.com/T000/B000/webhook-secret" }],
    servers: { fromCommand: "./inventory.sh" },
  };
  const env = {
    TOKEN: "tok-from-env-123",
    NEXUS_SSH_KEY: "-----BEGIN KEY-----\nS3CRETKEYLINE\n-----END KEY-----",
  };
  const redact = inventoryRedactor(config, env);

  it("masks the values the config marks as secret, as `nexus config` does, and nothing else of it", () => {
    const said = [
      "auth failed with tok-from-env-123",
      "db hunter2-literal at postgres://app:pw-in-url@db/prod",
      "posting to https://hooks.example.com/T000/B000/webhook-secret",
      "NODE_ENV is production",
    ].join("\n");
    const quoted = quoteOutput(said, redact);
    for (const secret of ["tok-from-env-123", "hunter2-literal", "pw-in-url", "webhook-secret"])
      expect(quoted).not.toContain(secret);
    expect(quoted).toContain("auth failed with ***");
    expect(quoted).toContain("NODE_ENV is production");
  });

  it("masks nexus's SSH credentials and what the output holds under a secret-looking key", () => {
    const dump =
      "NEXUS_SSH_KEY=-----BEGIN KEY-----\nS3CRETKEYLINE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI HOME=/root";
    const quoted = quoteOutput(dump, redact);
    expect(quoted).not.toMatch(/S3CRETKEYLINE|wJalrXUtnFEMI/);
    expect(quoted).toContain("AWS_SECRET_ACCESS_KEY=***");
    expect(quoted).toContain("HOME=/root");
    const printed =
      '[{"name": "web1", "host": "10.0.0.1", "env": {"DB_PASSWORD": "p@ss w0rd", "REGION": "eu"}}';
    expect(parseInventory(printed, redact)).toEqual({
      problem: `its output is not JSON; it printed ${JSON.stringify('[{"name": "web1", "host": "10.0.0.1", "env": {"DB_PASSWORD": "***", "REGION": "eu"}}')}`,
    });
  });

  it("masks before cutting: a secret at the cut is never shown in part", () => {
    const quoted = quoteOutput(`${"x".repeat(290)}tok-from-env-123`, redact);
    expect(quoted).toBe(`"${"x".repeat(290)}***"`);
    expect(quoteOutput(`${"x".repeat(295)}tok-from-env-123`, redact)).toBe(`"${"x".repeat(295)}***"`);
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

  it("never shows a secret of the config that the command printed", () => {
    const file = path.join(dir, "secret.config.json");
    writeFileSync(
      file,
      JSON.stringify({
        app: { name: "api" },
        pm2: { env: { API_TOKEN: { fromEnv: "TOKEN" } } },
        servers: { fromCommand: 'echo "401 for token $TOKEN" >&2; exit 1' },
        balancer: { host: "a", upstreamFile: "/etc/nginx/u.conf" },
      }),
    );
    const message = (() => {
      try {
        loadConfig(file, { TOKEN: "t0k-123456" });
      } catch (error) {
        return (error as ConfigError).message;
      }
      throw new Error("expected a ConfigError");
    })();
    expect(message).toContain('it exited with code 1; stderr: "401 for token ***"');
    expect(message).not.toContain("t0k-123456");
  });
});
