import { describe, expect, it } from "vitest";
import { maskedConfig } from "../../src/commands/config.js";
import { ConfigError } from "../../src/config/errors.js";
import { requireSecrets, resolveConfig } from "../../src/config/load.js";
import { secretValues } from "../../src/config/secrets.js";
import { releaseEnv } from "../../src/deploy/release-env.js";
import { ecosystemFile } from "../../src/process/pm2/ecosystem.js";
import { Pm2 } from "../../src/process/pm2/pm2.js";
import { processProblem } from "../../src/process/process-manager.js";
import { layout } from "../../src/remote/layout.js";
import { secretRedactor } from "../../src/report/redact.js";
import { parseStart } from "../../src/start/start.js";
import { configProblems as problems } from "../fixtures/config.js";

function valid(): Record<string, unknown> {
  return {
    app: { name: "api", root: "app" },
    servers: [
      { name: "nexus-alpha", host: "10.0.0.1" },
      { name: "nexus-beta", host: "10.0.0.2", env: { ROLE: "beta-role" } },
    ],
    deployPath: "/srv/api",
    pm2: { env: { NODE_ENV: "production" } },
    balancer: { host: "nexus-alpha", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
  };
}

describe("secrets from the environment", () => {
  it("resolves fromEnv values when the config is loaded, per server too", () => {
    const data = valid();
    data.pm2 = { env: { NODE_ENV: "production", DATABASE_URL: { fromEnv: "CI_DB" } } };
    (data.servers as Record<string, unknown>[])[1]!.env = { API_KEY: { fromEnv: "BETA_KEY" } };
    const config = resolveConfig(data, "deploy.config.json", "/project", {
      CI_DB: "postgres://u:p@db/x",
      BETA_KEY: "beta-secret-key",
    });
    expect(config.servers[0]?.env).toEqual({ NODE_ENV: "production", DATABASE_URL: "postgres://u:p@db/x" });
    expect(config.servers[1]?.env).toEqual({
      NODE_ENV: "production",
      DATABASE_URL: "postgres://u:p@db/x",
      API_KEY: "beta-secret-key",
    });
    expect(config.servers[1]?.envSources).toEqual({ DATABASE_URL: "CI_DB", API_KEY: "BETA_KEY" });
  });

  it("a missing or empty variable is no error to load (status, drain, check need none), but is to write the app's env", () => {
    const data = valid();
    data.pm2 = { env: { DATABASE_URL: { fromEnv: "CI_DB" } } };
    (data.servers as Record<string, unknown>[])[1]!.env = { "API-KEY": { fromEnv: "BETA_KEY" } };
    const config = resolveConfig(data, "deploy.config.json", "/project", { BETA_KEY: "" });
    expect(config.servers[0]?.env).toEqual({});
    let error: unknown;
    try {
      requireSecrets(config, "deploy writes it into the app's environment");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      "pm2.env.DATABASE_URL: the environment variable CI_DB is not set (deploy writes it into the app's environment: set it where nexus runs, such as a CI secret)",
      'servers[1].env["API-KEY"]: the environment variable BETA_KEY is empty (deploy writes it into the app\'s environment: set it where nexus runs, such as a CI secret)',
    ]);
    // Only the servers the command writes to count.
    expect(() => requireSecrets(config, "x", ["nexus-alpha"])).toThrow(/CI_DB/);
    expect(() => requireSecrets(config, "x", ["nexus-alpha"])).not.toThrow(/BETA_KEY/);
    // No path writes an environment with a secret missing.
    expect(() => releaseEnv(config, config.servers[0] as never, "r1")).toThrow(/CI_DB is not set/);
    // `nexus config` says where each would come from.
    const shown = maskedConfig(config) as { servers: { env: Record<string, string> }[] };
    expect(shown.servers[1]?.env).toEqual({
      DATABASE_URL: "(from $CI_DB: not set here)",
      "API-KEY": "(from $BETA_KEY: empty here)",
    });
  });

  it("a server's own fromEnv value that is missing never falls back to the common one", () => {
    const data = valid();
    data.pm2 = { env: { TOKEN: { fromEnv: "COMMON" } } };
    (data.servers as Record<string, unknown>[])[1]!.env = { TOKEN: { fromEnv: "BETA_TOKEN" } };
    const config = resolveConfig(data, "x", "/p", { COMMON: "common-token" });
    expect(config.servers[0]?.env.TOKEN).toBe("common-token");
    expect(config.servers[1]?.env.TOKEN).toBeUndefined();
    expect(() => requireSecrets(config, "restart")).toThrow(
      /servers\[1\]\.env\.TOKEN: the environment variable BETA_TOKEN is not set/,
    );
  });

  it("refuses a malformed reference", () => {
    const data = valid();
    data.pm2 = { env: { A: { fromEnv: "not a name" } }, instances: 0 };
    expect(problems(data).join("\n")).toMatch(/pm2\.env\.A/);
  });

  it("a server's plain value overriding a fromEnv one is no longer from the environment", () => {
    const data = valid();
    data.pm2 = { env: { TOKEN: { fromEnv: "T" } } };
    (data.servers as Record<string, unknown>[])[1]!.env = { TOKEN: "plain-override" };
    const config = resolveConfig(data, "x", "/p", { T: "from-the-env" });
    expect(config.servers[1]?.secretKeys).toEqual([]);
    expect(config.servers[0]?.secretKeys).toEqual(["TOKEN"]);
  });

  it("every fromEnv value is a secret whatever its key or length; shown values never are", () => {
    const data = valid();
    data.pm2 = {
      env: {
        PIN_CODE: { fromEnv: "PIN" },
        NODE_ENV: "production",
        DEBUG: "abc",
        HOST_COPY: "10.0.0.1",
      },
    };
    const config = resolveConfig(data, "x", "/p", { PIN: "4711" });
    const values = secretValues(config);
    expect(values).toContainEqual({ value: "4711", anyLength: true });
    expect(values).toContainEqual({ value: "production", anyLength: false });
    expect(values).toContainEqual({ value: "beta-role", anyLength: false });
    expect(values.map((v) => v.value)).not.toContain("10.0.0.1");
    const redact = secretRedactor(config, {});
    expect(redact("pin=4711 env=production role=beta-role debug=abc id=47110")).toBe(
      "pin=*** env=*** role=*** debug=abc id=47110",
    );
  });

  it("nexus config masks them and says where they come from", () => {
    const data = valid();
    data.pm2 = { env: { DATABASE_URL: { fromEnv: "CI_DB" } } };
    data.hooks = { beforeRoll: "echo postgres://u:p@db/x" };
    const masked = JSON.stringify(
      maskedConfig(resolveConfig(data, "x", "/p", { CI_DB: "postgres://u:p@db/x" })),
    );
    expect(masked).not.toContain("postgres://u:p@db/x");
    expect(masked).toContain("*** (from $CI_DB)");
  });

  it("nexus config keeps numbers that equal a secret numbers (masking the JSON text broke it)", () => {
    const data = valid();
    data.app = { name: "api", root: "app", port: 3000 };
    data.pm2 = { env: { PORT: { fromEnv: "CI_PORT" }, CACHE_TTL_MS: "300000" } };
    const masked = maskedConfig(resolveConfig(data, "x", "/p", { CI_PORT: "3000" }));
    expect((masked.app as { port: number }).port).toBe(3000);
    expect((masked.hooks as { timeout: number }).timeout).toBe(300_000);
    const env = (masked.servers as { env: Record<string, string> }[])[0]?.env;
    expect(env).toMatchObject({ PORT: "*** (from $CI_PORT)", CACHE_TTL_MS: "***" });
  });
});

describe("shared paths", () => {
  it("accepts relative paths and strips a trailing slash", () => {
    const data = valid();
    data.shared = { files: [".env", "config/production.json"], dirs: ["uploads/", "storage/cache"] };
    const config = resolveConfig(data, "x", "/p", {});
    expect(config.shared).toEqual({
      files: [".env", "config/production.json"],
      dirs: ["uploads", "storage/cache"],
    });
  });

  it("refuses absolute paths, .., . and empty parts, naming the field", () => {
    const data = valid();
    data.shared = { files: ["/etc/passwd", "../x", "a//b"], dirs: ["./up", "~/x"] };
    expect(problems(data)).toEqual([
      "shared.files[0]: must be relative to the release, not absolute",
      'shared.files[1]: must not contain "..", "." or empty parts',
      'shared.files[2]: must not contain "..", "." or empty parts',
      'shared.dirs[0]: must not contain "..", "." or empty parts',
      "shared.dirs[1]: must be relative to the release, not absolute",
    ]);
  });

  it("refuses the same path twice and nested paths", () => {
    const data = valid();
    data.shared = { files: ["uploads/a.txt", ".env"], dirs: ["uploads", ".env"] };
    expect(problems(data)).toEqual([
      'shared.dirs[0]: "uploads" and shared.files[0] "uploads/a.txt" are nested: share the outer one only',
      'shared.dirs[1]: ".env" is also shared.files[1]',
    ]);
  });
});

describe("hooks", () => {
  it("default a 5 minute timeout; beforeRollOn must name a server", () => {
    const data = valid();
    data.hooks = { beforeRoll: "npm run migrate", timeout: "30s" };
    expect(resolveConfig(data, "x", "/p", {}).hooks).toEqual({
      beforeRoll: "npm run migrate",
      timeout: 30_000,
    });
    data.hooks = { beforeRoll: "npm run migrate", beforeRollOn: "nexus-omega" };
    expect(problems(data)).toEqual([
      'hooks.beforeRollOn: "nexus-omega" is not a server name (expected one of "nexus-alpha", "nexus-beta")',
    ]);
    data.hooks = { beforeroll: "x" };
    expect(problems(data)).toEqual(['hooks.beforeroll: unknown key (did you mean "beforeRoll"?)']);
  });
});

describe("PM2 cluster mode", () => {
  it("instances, execMode and allowed options reach the ecosystem file; nexus's own keys win", () => {
    const data = valid();
    data.pm2 = {
      instances: 2,
      execMode: "cluster",
      options: { max_memory_restart: "300M", node_args: ["--max-old-space-size=256"] },
    };
    const config = resolveConfig(data, "x", "/p", {});
    const pm2 = new Pm2({ ...config.pm2, start: parseStart("server.js", undefined) });
    expect(pm2.instances).toBe(2);
    const file = pm2.processFile(layout("/srv/api"), {
      release: "r1",
      cwd: "/srv/api/releases/r1",
      env: { A: "1" },
    });
    expect(file.path).toBe("/srv/api/.nexus/pm2/r1.json");
    const app = JSON.parse(file.content).apps[0];
    expect(app).toMatchObject({
      name: "api",
      instances: 2,
      exec_mode: "cluster",
      max_memory_restart: "300M",
      node_args: ["--max-old-space-size=256"],
      cwd: "/srv/api/releases/r1",
      env: { A: "1" },
    });
  });

  it('"max" is passed to PM2 and leaves the count to what it started', () => {
    const data = valid();
    data.pm2 = { instances: "max", execMode: "cluster" };
    const config = resolveConfig(data, "x", "/p", {});
    expect(new Pm2({ ...config.pm2, start: parseStart("s.js", undefined) }).instances).toBeUndefined();
    expect(
      JSON.parse(
        ecosystemFile({
          name: "a",
          script: "s",
          cwd: "/",
          env: {},
          killTimeout: 1,
          outFile: "o",
          errorFile: "e",
          instances: "max",
        }),
      ).apps[0].instances,
    ).toBe("max");
  });

  it("options outside the allow-list (or that nexus sets) are refused with a suggestion", () => {
    const data = valid();
    data.pm2 = { options: { max_memory_restrat: "1G", cwd: "/tmp", exec_mode: "fork" }, execMode: "forked" };
    expect(problems(data)).toEqual([
      'pm2.execMode: expected one of "fork", "cluster", received "forked"',
      'pm2.options.max_memory_restrat: unknown key (did you mean "max_memory_restart"?)',
      "pm2.options.cwd: unknown key",
      "pm2.options.exec_mode: unknown key",
    ]);
  });
});

describe("the gate counts instances", () => {
  const p = (pid: number) => ({ name: "api", pid, status: "online", restarts: 0 });
  it("fewer or more instances than the config asks for fail the process check", () => {
    expect(processProblem([p(1), p(2)], [p(1), p(2)], [], 2)).toBeUndefined();
    expect(processProblem([p(1)], [p(1)], [], 2)).toBe("1 instance(s) running, 2 expected");
    expect(processProblem([p(1), p(2), p(3)], [p(1), p(2), p(3)], [], 2)).toMatch(/3 instance/);
    expect(processProblem([p(1)], [p(1)], [])).toBeUndefined();
  });
});
