import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { EXIT } from "../errors.js";
import { SandboxError } from "../sandbox/errors.js";
import type { GlobalOptions } from "./context.js";
import { printResult } from "./result.js";

interface SandboxFlags {
  dir: string;
  purge?: boolean;
  hosts?: number;
  ipPrefix?: string;
  balancer?: string;
}

/** The sandbox hosts run the app under PM2, which nexus itself does not ship (deploy targets bring their own). */
export const PM2_HINT =
  "nexus sandbox needs PM2 to run the app on its hosts: `npm install -D pm2` in the directory you run nexus from (or a parent), or `npm ci` in a nexus checkout";

function hostCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 12)
    throw new InvalidArgumentError("expected a whole number from 1 to 12.");
  return n;
}

/** The sandbox code (execa, the host layout...) is loaded by the sandbox commands only. */
const sandboxModule = () => import("../sandbox/index.js");

function fail(error: unknown): number {
  if (error instanceof SandboxError) {
    const message = error.message.startsWith("pm2 not found")
      ? `${error.message}\n${PM2_HINT}`
      : error.message;
    process.stderr.write(`nexus sandbox: ${message}\n`);
    return EXIT.failed;
  }
  throw error;
}

/** `nexus sandbox up | down | status`: the local loopback cluster used by the demo and the tests. */
export function sandboxCommand(setExit: (code: number) => void): Command {
  const sandbox = new Command("sandbox")
    .description(
      "a local cluster on loopback (sshd per host, Nginx, PM2) to try nexus and run its tests; needs sshd, nginx and pm2 (npm install -D pm2)",
    )
    .addHelpText("after", "\nExamples:\n  nexus sandbox up\n  nexus deploy --rolling\n  nexus sandbox down");
  const dirOption = ["--dir <path>", "state directory", ".sandbox"] as const;

  sandbox
    .command("up")
    .description("start the sandbox hosts and the load balancer (idempotent)")
    .option(...dirOption)
    .option("--hosts <n>", "number of app hosts (1 to 12)", hostCount, 3)
    .option("--ip-prefix <prefix>", "loopback prefix of the host addresses", "127.0.0.")
    .addOption(
      new Option("--balancer <type>", 'also run HAProxy beside Nginx: "haproxy"')
        .choices(["nginx", "haproxy"])
        .default("nginx"),
    )
    .action(async (flags: SandboxFlags, command: Command) => {
      try {
        const json = command.optsWithGlobals<GlobalOptions>().json;
        const { sandboxUp } = await sandboxModule();
        const info = await sandboxUp({
          dir: path.resolve(flags.dir),
          hosts: flags.hosts,
          ipPrefix: flags.ipPrefix,
          balancer: flags.balancer as "nginx" | "haproxy",
        });
        if (json) {
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
          });
          setExit(EXIT.ok);
          return;
        }
        for (const host of info.hosts) {
          process.stdout.write(
            `${host.name.padEnd(14)} ssh ${info.user}@${host.address}:${host.sshPort}  app ${host.appAddress}\n`,
          );
        }
        process.stdout.write(`load balancer  ${info.lb.url} (Nginx on ${info.lb.host})\n`);
        process.stdout.write(`state          ${info.dir} (${flags.dir} links to it)\n`);
        if (info.haproxy) {
          process.stdout.write(`load balancer  ${info.haproxy.url} (HAProxy on ${info.haproxy.host})\n`);
          process.stdout.write(`deploy through HAProxy: nexus -c ${info.haproxy.deployConfig} deploy\n`);
        }
        setExit(EXIT.ok);
      } catch (error) {
        setExit(fail(error));
      }
    });

  sandbox
    .command("down")
    .description("stop exactly what `up` started")
    .option(...dirOption)
    .option("--purge", "also remove the sandbox's state directory (keys, releases) and the link to it")
    .action(async (flags: SandboxFlags, command: Command) => {
      try {
        const { sandboxDown, sandboxPurge } = await sandboxModule();
        await (flags.purge ? sandboxPurge : sandboxDown)(path.resolve(flags.dir));
        if (command.optsWithGlobals<GlobalOptions>().json)
          printResult({ command: "sandbox", action: "down", up: false });
        else process.stdout.write(flags.purge ? "sandbox stopped, its state removed\n" : "sandbox stopped\n");
        setExit(EXIT.ok);
      } catch (error) {
        setExit(fail(error));
      }
    });

  sandbox
    .command("status")
    .description("which sandbox processes are running")
    .option(...dirOption)
    .action(async (flags: SandboxFlags, command: Command) => {
      const { sandboxStatus } = await sandboxModule();
      const status = await sandboxStatus(path.resolve(flags.dir));
      if (command.optsWithGlobals<GlobalOptions>().json) {
        printResult({ command: "sandbox", action: "status", up: status.up, processes: status.processes });
        setExit(status.up ? EXIT.ok : EXIT.failed);
        return;
      }
      process.stdout.write(`sandbox ${status.up ? "up" : "down"}\n`);
      for (const p of status.processes) {
        process.stdout.write(
          `  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${p.alive ? "running" : "gone"}\n`,
        );
      }
      setExit(status.up ? EXIT.ok : EXIT.failed);
    });
  return sandbox;
}
