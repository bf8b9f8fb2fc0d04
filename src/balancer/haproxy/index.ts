import { nexusCommand } from "../../config/invocation.js";
import type { BalancerDriver } from "../driver.js";
import { haproxyConfigCommand } from "./config-command.js";
import { type HaproxyBalancerConfig, haproxyBalancerSchema } from "./schema.js";
import { haproxyStarter } from "./starter.js";

/**
 * HAProxy through its runtime API (haproxy.ts): drains and enables without a reload or a config
 * edit, so no client connection is touched.
 */
export const haproxyDriver: BalancerDriver<HaproxyBalancerConfig> = {
  type: "haproxy",
  schema: haproxyBalancerSchema,
  identity: (entry) => `${entry.host} ${entry.socket} ${entry.backend}`,
  problems(entry, at, servers) {
    const problems: string[] = [];
    for (const name of Object.keys(entry.servers)) {
      if (!servers.has(name)) problems.push(`${at}.servers: "${name}" is not a server name`);
    }
    for (const name of servers) {
      if (!(name in entry.servers) && !/^[A-Za-z0-9_.:-]+$/.test(name)) {
        problems.push(
          `${at}.servers: "${name}" is not a valid HAProxy server name: map it to the name in the backend`,
        );
      }
    }
    return problems;
  },
  create: async (entry, runner, context) =>
    (await import("./create.js")).createHaproxy(entry, runner, context),
  check: async (entry, context) => (await import("./check.js")).checkHaproxy(entry, context),
  async setup(entry, context) {
    context.say(
      `${entry.host} (balancer): HAProxy needs its admin socket and backend as \`${nexusCommand("haproxy-config")}\` prints them (set up as root)`,
    );
  },
  watch: async (entry, context) => (await import("./watch.js")).watchHaproxy(entry, context),
  configCommand: haproxyConfigCommand,
  starter: haproxyStarter,
};
