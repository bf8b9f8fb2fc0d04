import type { ProcessManagerDriver } from "../driver.js";
import { pm2CheckScript, pm2Items } from "./check.js";
import { Pm2 } from "./pm2.js";
import { pm2NameProblem, pm2Schema } from "./schema.js";

/** The app's address as its upstream names it: only a listener there (or on all addresses) holds its port. */
function appHost(upstream: string): string {
  return upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
}

const section = pm2Schema.default(pm2Schema.parse({}));

/** PM2, in each server's own installation: one ecosystem file per release (pm2.ts). The default. */
export const pm2Manager: ProcessManagerDriver<"pm2", typeof section> = {
  type: "pm2",
  section,
  nameProblem: pm2NameProblem,
  create: (config) => new Pm2({ ...config.pm2, script: config.app.start }),
  check: {
    script: (config, server) =>
      pm2CheckScript({
        appPort: config.app.port,
        appHost: appHost(server.upstream),
        pm2Name: config.pm2.name,
      }),
    items: (facts, config, server) =>
      pm2Items(facts, { server: server.name, appPort: config.app.port, pm2Name: config.pm2.name }),
  },
};
