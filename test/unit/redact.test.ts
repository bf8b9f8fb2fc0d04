import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { redactedLogLines, secretRedactor } from "../../src/report/redact.js";

const KEY = [
  "-----BEGIN OPENSSH PRIVATE KEY-----",
  "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
  "QyNTUxOQAAACBbWq0yZ8xQn2q5h1vJpL3kz9mVb0oK7sT1cRrYwX3fEgAAAJgAAAAAAAAA",
  "-----END OPENSSH PRIVATE KEY-----",
].join("\n");

function config(env: Record<string, string>) {
  return resolveConfig(
    {
      app: { name: "api" },
      servers: [{ name: "web-1", host: "10.0.0.1" }],
      deployPath: "/srv/api",
      pm2: { env },
      balancer: { host: "web-1", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
    },
    "deploy.config.json",
    "/project",
  );
}

const noAgent = { NEXUS_SSH_KEY: KEY, NEXUS_SSH_PASSPHRASE: "pw1" };

describe("secret redaction", () => {
  it("secretsOnly (what every printed line passes): secrets and the key, not plain env values", () => {
    const redact = secretRedactor(config({ NODE_ENV: "production", API_TOKEN: "tok-123456" }), noAgent, {
      secretsOnly: true,
    });
    expect(redact("warning: .env.production looks like a secret")).toBe(
      "warning: .env.production looks like a secret",
    );
    expect(redact("curl -H 'Authorization: tok-123456'")).toBe("curl -H 'Authorization: ***'");
    expect(redact(KEY.split("\n")[1] as string)).toBe("***");
    expect(redact("pw1")).toBe("***");
    expect(secretRedactor(config({ NODE_ENV: "production" }), noAgent)(".env.production")).toBe(".env.***");
  });

  it("a URL with a password is a secret under any key; the app's port is never one, even from the environment", () => {
    const withUrl = secretRedactor(config({ DATABASE_URL: "postgres://app:pw-2@db/prod" }), noAgent, {
      secretsOnly: true,
    });
    expect(withUrl("connecting to postgres://app:pw-2@db/prod")).toBe("connecting to ***");
    const fromEnv = resolveConfig(
      {
        app: { name: "api", port: 3000 },
        servers: [{ name: "web-1", host: "10.0.0.1" }],
        deployPath: "/srv/api",
        pm2: { env: { PORT: { fromEnv: "CI_PORT" } } },
        balancer: { host: "web-1", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
      },
      "deploy.config.json",
      "/project",
      { CI_PORT: "3000" },
    );
    expect(secretRedactor(fromEnv, noAgent, { secretsOnly: true })("ECONNREFUSED 10.0.0.1:3000")).toBe(
      "ECONNREFUSED 10.0.0.1:3000",
    );
  });

  it("masks a value verbatim and in the JSON-escaped form `pm2 jlist` prints", () => {
    const value = 'p"a\\ss\nword-2';
    const redact = secretRedactor(config({ DB_URL: value }), noAgent);
    const jlist = JSON.stringify([{ name: "api", pm2_env: { env: { DB_URL: value } } }]);
    expect(jlist).not.toContain(value);
    expect(redact(jlist)).not.toContain(JSON.stringify(value).slice(1, -1));
    expect(redact(jlist)).toContain('"DB_URL":"***"');
    expect(redact(`echo ${value}`)).toBe("echo ***");
    // A multi-line value printed line by line (output is redacted one line at a time).
    expect(redact('p"a\\ss')).toBe("***");
    expect(redact("word-2")).toBe("***");
  });

  it("masks short values of keys that look secret, as whole tokens only", () => {
    const redact = secretRedactor(
      config({ API_TOKEN: "ab1", DB_PASSWORD: "hunter", PIN: "4711", PORT: "3000", DEBUG: "true" }),
      noAgent,
    );
    expect(redact("token=ab1 pin 4711")).toBe("token=*** pin ***");
    expect(redact('{"API_TOKEN":"ab1"}')).toBe('{"API_TOKEN":"***"}');
    // Inside a longer word it is not the secret.
    expect(redact("tab1e ab12 cab1")).toBe("tab1e ab12 cab1");
    // Short values of ordinary keys are no secrets.
    expect(redact("listening on 3000, debug=true")).toBe("listening on 3000, debug=true");
    expect(redact("password hunter2")).toBe("password ***2");
  });

  it("masks the private key's lines and a short passphrase", () => {
    const redact = secretRedactor(config({}), noAgent);
    const line = KEY.split("\n")[1] as string;
    expect(redact(`key: ${line}`)).toBe("key: ***");
    expect(redact("passphrase pw1 ok")).toBe("passphrase *** ok");
  });

  it("leaves values the config shows in the clear", () => {
    const redact = secretRedactor(config({ HOST: "10.0.0.1", SECRET_KEY: "s3cr3t-value" }), noAgent);
    expect(redact("bound 10.0.0.1 with s3cr3t-value")).toBe("bound 10.0.0.1 with ***");
  });

  it("masks the app's error-log lines of a failed gate", () => {
    const cfg = config({ STRIPE_KEY: "sk_live_abcdef", SESSION_SECRET: "xyz" });
    const log = 'Error: charge failed for sk_live_abcdef\n\n  at {"SESSION_SECRET":"xyz"}\n';
    expect(redactedLogLines(cfg, log)).toEqual([
      "Error: charge failed for ***",
      '  at {"SESSION_SECRET":"***"}',
    ]);
  });
});
