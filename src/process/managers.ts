import type { Config } from "../config/load.js";
import type { ProcessManagerDriver } from "./driver.js";
import { pm2Manager } from "./pm2/index.js";
import type { ProcessManager } from "./process-manager.js";

/** Every process manager nexus knows, the default (`process.type` left out) first. */
export const PROCESS_MANAGERS = [pm2Manager] as const;

export type ProcessManagerType = (typeof PROCESS_MANAGERS)[number]["type"];

/** The process manager a config asks for (`process.type`). */
export function processManagerOf(config: Pick<Config, "process">): ProcessManagerDriver {
  const manager = PROCESS_MANAGERS.find((candidate) => candidate.type === config.process.type);
  if (!manager) throw new Error(`no process manager driver for type "${config.process.type}"`);
  return manager;
}

export function createProcessManager(config: Config): Promise<ProcessManager> {
  return processManagerOf(config).create(config);
}
