import { Command } from "commander";
import { exitCodeForError, type GlobalOptions, readConfig } from "../../cli/context.js";
import { printResult } from "../../cli/result.js";
import type { HaproxyBalancerConfig } from "../../config/load.js";
import { EXIT } from "../../errors.js";
import { renderHaproxyConfig } from "./config.js";

/** `nexus haproxy-config`: the HAProxy counterpart of `nexus nginx-config`. */
export function haproxyConfigCommand(setExit: (code: number) => void): Command {
  return new Command("haproxy-config")
    .description(
      "print the recommended HAProxy admin socket, state file and backend for the configured servers",
    )
    .option("--backend <name>", "backend name (default: balancer.backend, else nexus_app)")
    .addHelpText("after", "\nExample:\n  nexus haproxy-config >> /etc/haproxy/haproxy.cfg")
    .action(function (this: Command, opts: { backend?: string }) {
      try {
        const global = this.optsWithGlobals<GlobalOptions>();
        const config = readConfig(global);
        const haproxy = config.balancers.find((b): b is HaproxyBalancerConfig => b.type === "haproxy");
        const backend = opts.backend ?? haproxy?.backend ?? "nexus_app";
        const text = renderHaproxyConfig({
          backend,
          servers: config.servers.map((s) => ({
            name: haproxy?.servers[s.name] ?? s.name,
            address: s.upstream,
          })),
          socket: haproxy?.socket ?? "/run/haproxy/admin.sock",
          stateFile: haproxy?.stateFile ?? "/var/lib/haproxy/server-state",
          healthPath: config.health.path,
        });
        if (global.json) printResult({ command: "haproxy-config", backend, config: text });
        else process.stdout.write(text);
        setExit(EXIT.ok);
      } catch (error) {
        const { code, message } = exitCodeForError(error);
        process.stderr.write(`nexus: ${message}\n`);
        setExit(code);
      }
    });
}
