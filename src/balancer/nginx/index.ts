import { resolveRemotePath } from "../../remote/layout.js";
import type { BalancerDriver } from "../driver.js";
import { checkNginx } from "./check.js";
import { nginxConfigCommand } from "./config-command.js";
import { NginxBalancer } from "./nginx.js";
import { type NginxBalancerConfig, nginxBalancerSchema } from "./schema.js";
import { setupNginx } from "./setup.js";
import { watchNginx } from "./watch/watch.js";

/**
 * Open-source Nginx, which has no runtime API: a drain marks the server `down` in the upstream
 * file nexus may edit, tests the config and reloads (nginx.ts). The default `balancer.type`.
 */
export const nginxDriver: BalancerDriver<NginxBalancerConfig> = {
  type: "nginx",
  schema: nginxBalancerSchema,
  identity: (entry) => `${entry.host} ${entry.upstreamFile} ${entry.upstream ?? ""}`,
  create: (entry, runner, context) =>
    new NginxBalancer(runner, {
      upstreamFile: resolveRemotePath(entry.upstreamFile, context.home),
      upstream: entry.upstream,
      testCommand: entry.testCommand,
      reloadCommand: entry.reloadCommand,
      pidFile: resolveRemotePath(entry.pidFile, context.home),
      onWarning: context.onWarning,
    }),
  check: checkNginx,
  setup: setupNginx,
  watch: watchNginx,
  configCommand: nginxConfigCommand,
};
