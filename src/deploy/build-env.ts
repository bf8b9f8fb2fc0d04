import type { Config } from "../config/load.js";

/** The default names, dropped even when the config names others: a CI job may set both. */
const KEY_VARIABLES = ["NEXUS_SSH_KEY", "NEXUS_SSH_PASSPHRASE"];

/**
 * The environment for the local build step (`app.build`): ours without the deploy key and its
 * passphrase, so no build-time dependency (a postinstall script, a bundler plugin) can read them.
 */
export function buildEnv(ssh: Config["ssh"], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const hidden = new Set([...KEY_VARIABLES, ssh.privateKeyEnv, ssh.passphraseEnv]);
  return Object.fromEntries(Object.entries(env).filter(([name]) => !hidden.has(name)));
}

/** execa options for the build step: exactly `buildEnv`, nothing merged back in. */
export function buildEnvOptions(ssh: Config["ssh"]): { env: NodeJS.ProcessEnv; extendEnv: false } {
  return { env: buildEnv(ssh), extendEnv: false };
}
