import * as z from "zod";
import type { Config } from "../../config/load.js";
import type { ConfigCommand } from "../driver.js";
import { renderHaproxyConfig } from "./config.js";
import type { HaproxyBalancerConfig } from "./schema.js";

/** `nexus haproxy-config`: the HAProxy counterpart of `nexus nginx-config`. */
export const haproxyConfigCommand: ConfigCommand = {
  name: "haproxy-config",
  description:
    "print the recommended HAProxy admin socket, state file and backend for the configured servers",
  options: [
    { flags: "--backend <name>", description: "backend name (default: balancer.backend, else nexus_app)" },
  ],
  examples: ["nexus haproxy-config >> /etc/haproxy/haproxy.cfg"],
  render(config: Config, flags: { backend?: unknown }) {
    const haproxy = config.balancers.find((b): b is HaproxyBalancerConfig => b.type === "haproxy");
    const backend = (flags.backend as string | undefined) ?? haproxy?.backend ?? "nexus_app";
    const text = renderHaproxyConfig({
      backend,
      servers: config.servers.map((s) => ({
        name: haproxy?.servers[s.name] ?? s.name,
        address: s.upstream,
        ...(config.rolling.strategy === "surge" && s.surgeUpstream ? { surgeAddress: s.surgeUpstream } : {}),
      })),
      socket: haproxy?.socket ?? "/run/haproxy/admin.sock",
      stateFile: haproxy?.stateFile ?? "/var/lib/haproxy/server-state",
      healthPath: config.health.path,
    });
    return { text, result: { command: "haproxy-config", backend, config: text } };
  },
  resultShape: {
    command: z.literal("haproxy-config"),
    backend: z.string(),
    config: z.string().describe("the global, defaults and backend lines to add to haproxy.cfg"),
  },
};
