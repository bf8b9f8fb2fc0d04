import path from "node:path";
import { Command } from "commander";
import { EXIT } from "../errors.js";
import { SandboxError, sandboxDown, sandboxStatus, sandboxUp } from "../sandbox/index.js";

interface SandboxFlags {
  dir: string;
  hosts?: string;
  ipPrefix?: string;
  balancer?: string;
}

function fail(error: unknown): number {
  if (error instanceof SandboxError) {
    process.stderr.write(`nexus sandbox: ${error.message}\n`);
    return EXIT.failed;
  }
  throw error;
}

/** `nexus sandbox up | down | status`: the local loopback cluster used by the demo and the tests. */
export function sandboxCommand(setExit: (code: number) => void): Command {
  const sandbox = new Command("sandbox")
    .description("a local cluster on loopback (sshd per host, Nginx, PM2) to try nexus and run its tests")
    .addHelpText("after", "\nExamples:\n  nexus sandbox up\n  nexus deploy --rolling\n  nexus sandbox down");
  const dirOption = ["--dir <path>", "state directory", ".sandbox"] as const;

  sandbox
    .command("up")
    .description("start the sandbox hosts and the load balancer (idempotent)")
    .option(...dirOption)
    .option("--hosts <n>", "number of app hosts (3 to 12)", "3")
    .option("--ip-prefix <prefix>", "loopback prefix of the host addresses", "127.0.0.")
    .option("--balancer <type>", 'also run HAProxy beside Nginx: "haproxy"', "nginx")
    .action(async (flags: SandboxFlags) => {
      try {
        const info = await sandboxUp({
          dir: path.resolve(flags.dir),
          hosts: Number(flags.hosts),
          ipPrefix: flags.ipPrefix,
          balancer: flags.balancer as "nginx" | "haproxy",
        });
        for (const host of info.hosts) {
          process.stdout.write(
            `${host.name.padEnd(14)} ssh ${info.user}@${host.address}:${host.sshPort}  app ${host.appAddress}\n`,
          );
        }
        process.stdout.write(`load balancer  ${info.lb.url} (Nginx on ${info.lb.host})\n`);
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
    .action(async (flags: SandboxFlags) => {
      try {
        await sandboxDown(path.resolve(flags.dir));
        process.stdout.write("sandbox stopped\n");
        setExit(EXIT.ok);
      } catch (error) {
        setExit(fail(error));
      }
    });

  sandbox
    .command("status")
    .description("which sandbox processes are running")
    .option(...dirOption)
    .action(async (flags: SandboxFlags) => {
      const status = await sandboxStatus(path.resolve(flags.dir));
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
