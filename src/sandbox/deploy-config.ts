import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SandboxBastion } from "./bastion.js";
import type { SandboxInfo } from "./layout.js";

export interface SandboxDeployOptions {
  appRoot: string;
  appName?: string;
  /** Only the first N hosts (the bench deploys to part of a larger sandbox). */
  hosts?: number;
}

/**
 * A deploy.config.json (as data) that deploys an app to this sandbox: each host's address and
 * SSH port, its login user, client key and known_hosts, its Nginx commands (through `sudo -n`
 * when the hosts log in as the deploy user). Tests and benchmarks start from this and override
 * what they measure.
 */
export function sandboxDeployConfig(
  info: SandboxInfo,
  options: SandboxDeployOptions,
): Record<string, unknown> {
  const name = options.appName ?? "nexus-app";
  return {
    app: { name, root: options.appRoot, start: "server.js", port: 3000 },
    servers: info.hosts.slice(0, options.hosts ?? info.hosts.length).map((h) => ({
      name: h.name,
      host: h.address,
      port: h.sshPort,
      env: { HOST: h.address },
    })),
    ssh: { user: info.user, privateKey: info.clientKey, knownHosts: info.knownHosts },
    deployPath: `~/apps/${name}`,
    balancer: {
      host: info.lb.host,
      upstreamFile: info.lb.upstreamFile,
      testCommand: info.lb.testCommand,
      reloadCommand: info.lb.reloadCommand,
      pidFile: info.lb.pidFile,
      accessLog: info.lb.accessLog,
    },
  };
}

/** The same deploy config, every server reached through the sandbox's bastion (`sandbox up --bastion`). */
export function sandboxBastionDeployConfig(
  info: SandboxInfo & { bastion: SandboxBastion },
  options: SandboxDeployOptions,
): Record<string, unknown> {
  const config = sandboxDeployConfig(info, options);
  return {
    ...config,
    ssh: {
      ...(config.ssh as Record<string, unknown>),
      proxyJump: `${info.user}@${info.bastion.address}:${info.bastion.sshPort}`,
    },
  };
}

export async function writeBastionDeployConfig(
  info: SandboxInfo & { bastion: SandboxBastion },
  projectRoot: string,
): Promise<void> {
  const config = sandboxBastionDeployConfig(info, { appRoot: join(projectRoot, "fixtures", "app") });
  await writeFile(info.bastion.deployConfig, `${JSON.stringify(config, null, 2)}\n`);
}
