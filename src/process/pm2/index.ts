import type { ProcessManagerDriver } from "../driver.js";
import { pm2NameProblem, pm2Schema } from "./schema.js";

const section = pm2Schema.default(pm2Schema.parse({}));

/** PM2, in each server's own installation: one ecosystem file per release (pm2.ts). The default. */
export const pm2Manager: ProcessManagerDriver<"pm2", typeof section> = {
  type: "pm2",
  section,
  nameProblem: pm2NameProblem,
  create: async (config) => {
    const [{ Pm2 }, { startOf }] = await Promise.all([import("./pm2.js"), import("../../start/load.js")]);
    // Read when a process file is first written: rollback, status or logs need no app root.
    return new Pm2({ ...config.pm2, start: () => startOf(config) });
  },
  check: async (config, server) => (await import("./check.js")).pm2Check(config, server),
};
