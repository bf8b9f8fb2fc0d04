import { describe, expect, it } from "vitest";
import { currentRelease, nexus, uniqueRelease, writeConfig } from "./helpers.js";

describe("secrets", () => {
  it("the local build step runs without the deploy key and its passphrase in its environment", async () => {
    const release = uniqueRelease("build-env");
    const config = writeConfig({
      app: {
        build:
          'if env | grep -Eq "^(NEXUS_SSH_KEY|NEXUS_SSH_PASSPHRASE|CI_DEPLOY_KEY|CI_DEPLOY_PASS)="; then echo "the deploy key reached the build" >&2; exit 1; fi; test "$BUILD_FLAVOUR" = plain',
      },
      // The key file wins over the env key for the connection; these are here only to be hidden.
      ssh: { privateKeyEnv: "CI_DEPLOY_KEY", passphraseEnv: "CI_DEPLOY_PASS" },
    });
    const run = await nexus(["-c", config, "deploy", "--only", "nexus-alpha", "--release-id", release], {
      env: {
        NEXUS_SSH_KEY: "not-a-key",
        NEXUS_SSH_PASSPHRASE: "not-a-passphrase",
        CI_DEPLOY_KEY: "not-a-key-either",
        CI_DEPLOY_PASS: "nor-a-passphrase",
        BUILD_FLAVOUR: "plain",
      },
    });
    expect(run.exitCode, run.all).toBe(0);
    expect(currentRelease("nexus-alpha")).toBe(release);
  });

  it("a failed build's output has the config's secrets masked, in every output mode", async () => {
    const config = writeConfig({
      app: { build: 'echo "connecting with $E2E_BUILD_SECRET"; exit 3' },
      pm2: { env: { API_TOKEN: { fromEnv: "E2E_BUILD_SECRET" } } },
    });
    const env = { E2E_BUILD_SECRET: "hunter2-s3cret-value" };
    for (const mode of [[], ["--json"], ["--plain"]]) {
      const run = await nexus(
        [...mode, "-c", config, "deploy", "--release-id", uniqueRelease("build-fails")],
        { env },
      );
      expect(run.exitCode, run.all).toBe(1);
      expect(run.all).toContain("build failed (exit 3)");
      expect(run.all).toContain("connecting with ***");
      expect(run.all).not.toContain("hunter2");
    }
  });

  it("--verbose never prints the HTTP fallback's URL (its token is the key to the artifact)", async () => {
    const release = uniqueRelease("http-verbose");
    const config = writeConfig({ transfer: { method: "http" } });
    const run = await nexus(["-v", "-c", config, "deploy", "--only", "nexus-beta", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toMatch(/nexus-beta: upload.*http/);
    // The fetch command is shown, but no 64-hex token, in it or anywhere else.
    expect(run.all).toContain("IFS= read -r url");
    expect(run.all).not.toMatch(/[0-9a-f]{64}\/release\.tar\.gz/);
    expect(currentRelease("nexus-beta")).toBe(release);
  });
});
