import * as z from "zod";
import type { Config } from "../../config/load.js";
import type { ConfigCommand } from "../driver.js";
import type { NginxBalancerConfig } from "./schema.js";
import {
  renderProxySettings,
  renderServerSettings,
  renderServersFile,
  renderUpgradeMap,
  renderUpstreamBlock,
} from "./upstream.js";
import { logFormatAdvice } from "./watch/log-format.js";

const text = z.string();

/** `nexus nginx-config`: the servers file, the upstream block, the proxy settings and the log format. */
export const nginxConfigCommand: ConfigCommand = {
  name: "nginx-config",
  description:
    "print the recommended servers file, upstream block and proxy settings for the configured servers",
  options: [
    { flags: "--name <upstream>", description: "upstream name", default: "nexus_app" },
    {
      flags: "--servers-only",
      description: "print only the servers file (the server lines, for balancer.upstreamFile), nothing else",
    },
  ],
  examples: [
    "nexus nginx-config   # then copy each part where its comment says",
    "nexus nginx-config --servers-only > /etc/nginx/nexus/api-servers.conf",
  ],
  render(config: Config, flags: { name?: unknown; serversOnly?: unknown }) {
    const nginx = config.balancers.find((b): b is NginxBalancerConfig => b.type === "nginx");
    const name = nginx?.upstream ?? String(flags.name);
    const servers = config.servers.map((s) => s.upstream);
    // The deploy user writes the servers file only; root's config includes it inside the block.
    const upstreamFile = nginx?.upstreamFile ?? `/etc/nginx/nexus/${config.app.name}-servers.conf`;
    const serversFile = renderServersFile({ servers });
    const upstreamBlock = `${renderUpstreamBlock({ name, include: upstreamFile })}\n`;
    const serverSettings = renderServerSettings(nginx?.drainTimeout ?? config.balancer.drainTimeout);
    const location = `location / {\n${renderProxySettings(name)}}\n`;
    const logFormat = logFormatAdvice(nginx?.accessLog ?? "/var/log/nginx/access.log");
    const upgradeMap = renderUpgradeMap();
    return {
      text: flags.serversOnly
        ? serversFile
        : `# ${upstreamFile} (balancer.upstreamFile; writable by the deploy user, nothing but server lines):\n${serversFile}\n# in your http block, in a file only root can write (e.g. /etc/nginx/conf.d/${name}.conf):\n${upstreamBlock}# in your http block, once (the location's Connection header: WebSockets pass through):\n${upgradeMap}\n# in your server block:\n${serverSettings}${location}\n# in your http block (rolling.watch reads it):\n${logFormat}\n`,
      result: {
        command: "nginx-config",
        upstream: name,
        servers,
        upstreamFile,
        serversFile,
        upstreamBlock,
        serverSettings,
        upgradeMap,
        location,
        logFormat,
      },
    };
  },
  resultShape: {
    command: z.literal("nginx-config"),
    upstream: text.describe("the upstream name"),
    servers: z.array(text).describe("the upstream addresses"),
    upstreamFile: text.describe("balancer.upstreamFile: the servers file the deploy user writes"),
    serversFile: text.describe("its content: nothing but the server lines"),
    upstreamBlock: text.describe("the upstream block that includes it, for a root-owned Nginx conf.d file"),
    serverSettings: text.describe("the server block's recommended directives (client_header_timeout)"),
    upgradeMap: text.describe("the http block's map behind the location's Connection header (WebSockets)"),
    location: text.describe("the location block with the recommended proxy settings"),
    logFormat: text.describe("the log_format and access_log lines rolling.watch reads"),
  },
};
