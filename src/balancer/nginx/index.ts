import type { BalancerDriver } from "../driver.js";
import { nginxConfigCommand } from "./config-command.js";
import { type NginxBalancerConfig, nginxBalancerSchema } from "./schema.js";
import { nginxStarter } from "./starter.js";

/**
 * Open-source Nginx, which has no runtime API: a drain marks the server `down` in the upstream
 * file nexus may edit, tests the config and reloads (nginx.ts). The default `balancer.type`.
 */
export const nginxDriver: BalancerDriver<NginxBalancerConfig> = {
  type: "nginx",
  schema: nginxBalancerSchema,
  identity: (entry) => `${entry.host} ${entry.upstreamFile} ${entry.upstream ?? ""}`,
  create: async (entry, runner, context) => (await import("./create.js")).createNginx(entry, runner, context),
  check: async (entry, context) => (await import("./check.js")).checkNginx(entry, context),
  setup: async (entry, context) => (await import("./setup.js")).setupNginx(entry, context),
  watch: async (entry, context) => (await import("./watch/watch.js")).watchNginx(entry, context),
  configCommand: nginxConfigCommand,
  starter: nginxStarter,
};
