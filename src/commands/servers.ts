import type { Config, ServerConfig } from "../config/load.js";
import { PlanError } from "../deploy/plan.js";

/** The server a command names (`nexus drain web1`): a usage error naming the valid ones otherwise. */
export function serverNamed(config: Config, name: string): ServerConfig {
  const server = config.servers.find((s) => s.name === name);
  if (!server) {
    throw new PlanError(
      `unknown server "${name}" (servers in ${config.file}: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return server;
}

/** The servers a command is limited to (`flag` names the flag in the error), in config order; all by default. */
export function serversNamed(config: Config, names: readonly string[] | undefined, flag: string): string[] {
  if (!names || names.length === 0) return config.servers.map((s) => s.name);
  const unknown = names.filter((n) => !config.servers.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new PlanError(
      `${flag}: unknown server ${unknown.map((n) => `"${n}"`).join(", ")} (servers: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return config.servers.filter((s) => names.includes(s.name)).map((s) => s.name);
}
