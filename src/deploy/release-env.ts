import type { Config, ServerConfig } from "../config/load.js";

/** The environment a release runs with on a server: its process file, its hooks, `nexus exec`. */
export function releaseEnv(config: Config, server: ServerConfig, release: string): Record<string, string> {
  return {
    PORT: String(config.app.port),
    ...server.env,
    NEXUS_RELEASE: release,
    NEXUS_SERVER: server.name,
  };
}
