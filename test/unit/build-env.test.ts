import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import { buildEnv } from "../../src/deploy/build-env.js";

function ssh(extra: Record<string, unknown> = {}) {
  return resolveConfig(
    {
      app: { name: "api" },
      servers: [{ name: "web-1", host: "10.0.0.1" }],
      deployPath: "/srv/api",
      balancer: { host: "web-1", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
      ssh: extra,
    },
    "deploy.config.json",
    "/project",
  ).ssh;
}

describe("the build step's environment", () => {
  const env = {
    PATH: "/usr/bin",
    NEXUS_SSH_KEY: "key",
    NEXUS_SSH_PASSPHRASE: "pass",
    DEPLOY_KEY: "other key",
    DEPLOY_PASS: "other pass",
    NPM_TOKEN: "kept: the build may need it",
  };

  it("has no deploy key or passphrase under the default names", () => {
    expect(buildEnv(ssh(), env)).toEqual({
      PATH: "/usr/bin",
      DEPLOY_KEY: "other key",
      DEPLOY_PASS: "other pass",
      NPM_TOKEN: "kept: the build may need it",
    });
  });

  it("nor under the names the config gives (and still not the default ones)", () => {
    expect(buildEnv(ssh({ privateKeyEnv: "DEPLOY_KEY", passphraseEnv: "DEPLOY_PASS" }), env)).toEqual({
      PATH: "/usr/bin",
      NPM_TOKEN: "kept: the build may need it",
    });
  });
});
