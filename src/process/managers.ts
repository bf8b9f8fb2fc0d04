import type { Config } from "../config/load.js";
import { Pm2 } from "./pm2/pm2.js";
import type { ProcessManager } from "./process-manager.js";

/** The process manager a config asks for; a new driver is one line here. */
export function createProcessManager(config: Config): ProcessManager {
  return new Pm2({ ...config.pm2, script: config.app.start });
}
