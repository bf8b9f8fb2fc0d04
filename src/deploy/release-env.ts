import { type Config, requireSecrets, type ServerConfig } from "../config/load.js";

/**
 * The environment a release runs with on a server: its process file, its hooks, `nexus exec`.
 * The commands that reach here called `requireSecrets` first; this checks again, so that no code
 * path can write an environment with a secret missing.
 */
export function releaseEnv(config: Config, server: ServerConfig, release: string): Record<string, string> {
  if (server.missingSecrets?.length) requireSecrets(config, "the app's environment holds it", [server.name]);
  return {
    PORT: String(config.app.port),
    ...server.env,
    NEXUS_RELEASE: release,
    NEXUS_SERVER: server.name,
  };
}
