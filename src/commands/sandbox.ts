import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { EXIT } from "../errors.js";
import { SandboxError } from "../sandbox/errors.js";
import { MAX_HOSTS } from "../sandbox/limits.js";

interface SandboxFlags {
  dir: string;
  purge?: boolean;
  hosts?: number;
  ipPrefix?: string;
  balancer?: string;
  bastion?: boolean;
}

/** The sandbox hosts run the app under PM2, which nexus itself does not ship (deploy targets bring their own). */
export const PM2_HINT =
  "nexus sandbox needs PM2 to run the app on its hosts: `npm install -D pm2` in the directory you run nexus from (or a parent), or `npm ci` in a nexus checkout";

function hostCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_HOSTS)
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_HOSTS}.`);
  return n;
}

/** The sandbox code (execa, the host layout...) is loaded by the sandbox commands only. */
const sandboxModule = () => import("../sandbox/index.js");

/** A sandbox that could not start for want of PM2 says how to get it. */
function withHint(error: unknown): unknown {
  if (error instanceof SandboxError && error.message.startsWith("pm2 not found"))
    return new SandboxError(`${error.message}\n${PM2_HINT}`);
  return error;
}

const dirOption = ["--dir <path>", "state directory", ".sandbox"] as const;

/** `nexus sandbox up | down | status`: the local loopback cluster used by the demo and the tests. */
export function sandboxCommand(setExit: SetExit): Command {
  return new Command("sandbox")
    .description(
      "a local cluster on loopback (sshd per host, Nginx, PM2) to try nexus and run its tests; needs sshd, nginx and pm2 (npm install -D pm2)",
    )
    .addHelpText("after", examples("nexus sandbox up", "nexus deploy --rolling", "nexus sandbox down"))
    .addCommand(upCommand(setExit))
    .addCommand(downCommand(setExit))
    .addCommand(statusCommand(setExit));
}

function upCommand(setExit: SetExit): Command {
  return new Command("up")
    .description("start the sandbox hosts and the load balancer (idempotent)")
    .option(...dirOption)
    .option("--hosts <n>", `number of app hosts (1 to ${MAX_HOSTS})`, hostCount, 3)
    .option("--ip-prefix <prefix>", "loopback prefix of the host addresses", "127.0.0.")
    .addOption(
      new Option("--balancer <type>", 'also run HAProxy beside Nginx: "haproxy"')
        .choices(["nginx", "haproxy"])
        .default("nginx"),
    )
    .option(
      "--bastion",
      "reach the app hosts only through a jump host, as in a private network (as root: network namespaces)",
    )
    .addHelpText("after", examples("nexus sandbox up --hosts 4", "nexus sandbox up --bastion"))
    .action(
      action(
        setExit,
        async ({ global }, flags: SandboxFlags) => {
          const { sandboxUp } = await sandboxModule();
          const info = await sandboxUp({
            dir: path.resolve(flags.dir),
            hosts: flags.hosts,
            ipPrefix: flags.ipPrefix,
            balancer: flags.balancer as "nginx" | "haproxy",
            bastion: flags.bastion === true,
          }).catch((error: unknown) => {
            throw withHint(error);
          });
          if (global.json) {
            printResult({
              command: "sandbox",
              action: "up",
              up: true,
              hosts: info.hosts.map((h) => ({
                name: h.name,
                ssh: `${info.user}@${h.address}:${h.sshPort}`,
                app: h.appAddress,
              })),
              lb: info.lb.url,
              ...(info.bastion
                ? {
                    bastion: `${info.user}@${info.bastion.address}:${info.bastion.sshPort}`,
                    deployConfig: info.bastion.deployConfig,
                  }
                : {}),
            });
            return EXIT.ok;
          }
          for (const host of info.hosts) {
            process.stdout.write(
              `${host.name.padEnd(14)} ssh ${info.user}@${host.address}:${host.sshPort}  app ${host.appAddress}\n`,
            );
          }
          process.stdout.write(`load balancer  ${info.lb.url} (Nginx on ${info.lb.host})\n`);
          process.stdout.write(`state          ${info.dir} (${flags.dir} links to it)\n`);
          if (info.bastion) {
            process.stdout.write(
              `bastion        ssh ${info.user}@${info.bastion.address}:${info.bastion.sshPort} (the only way to the app hosts)\n`,
            );
            process.stdout.write(
              `deploy through the bastion: nexus -c ${info.bastion.deployConfig} deploy\n`,
            );
          }
          if (info.haproxy) {
            process.stdout.write(`load balancer  ${info.haproxy.url} (HAProxy on ${info.haproxy.host})\n`);
            process.stdout.write(`deploy through HAProxy: nexus -c ${info.haproxy.deployConfig} deploy\n`);
          }
          return EXIT.ok;
        },
        "nexus sandbox",
      ),
    );
}

function downCommand(setExit: SetExit): Command {
  return new Command("down")
    .description("stop exactly what `up` started")
    .option(...dirOption)
    .option("--purge", "also remove the sandbox's state directory (keys, releases) and the link to it")
    .addHelpText("after", examples("nexus sandbox down"))
    .action(
      action(
        setExit,
        async ({ global }, flags: SandboxFlags) => {
          const { sandboxDown, sandboxPurge } = await sandboxModule();
          await (flags.purge ? sandboxPurge : sandboxDown)(path.resolve(flags.dir));
          if (global.json) printResult({ command: "sandbox", action: "down", up: false });
          else
            process.stdout.write(flags.purge ? "sandbox stopped, its state removed\n" : "sandbox stopped\n");
          return EXIT.ok;
        },
        "nexus sandbox",
      ),
    );
}

function statusCommand(setExit: SetExit): Command {
  return new Command("status")
    .description("which sandbox processes are running")
    .option(...dirOption)
    .addHelpText("after", examples("nexus sandbox status"))
    .action(
      action(
        setExit,
        async ({ global }, flags: SandboxFlags) => {
          const { sandboxStatus } = await sandboxModule();
          const status = await sandboxStatus(path.resolve(flags.dir));
          if (global.json) {
            printResult({ command: "sandbox", action: "status", up: status.up, processes: status.processes });
            return status.up ? EXIT.ok : EXIT.failed;
          }
          process.stdout.write(`sandbox ${status.up ? "up" : "down"}\n`);
          for (const p of status.processes) {
            process.stdout.write(
              `  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${p.alive ? "running" : "gone"}\n`,
            );
          }
          return status.up ? EXIT.ok : EXIT.failed;
        },
        "nexus sandbox",
      ),
    );
}
