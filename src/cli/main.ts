import v8 from "node:v8";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { selectConfiguredApp } from "../artifact/pack.js";
import {
  renderProxySettings,
  renderServerSettings,
  renderServersFile,
  renderUpstreamBlock,
} from "../balancer/nginx-upstream.js";
import { parseDuration } from "../config/duration.js";
import { requireSecrets } from "../config/load.js";
import { assertReleaseIdFlag, DEPLOY_NEEDS_SECRETS, deploy } from "../deploy/deploy.js";
import { drainServer, enableServer, fleetStatus } from "../deploy/manual.js";
import { describePlan, makePlan } from "../deploy/plan.js";
import { rollback } from "../deploy/rollback.js";
import { EXIT } from "../errors.js";
import { formatBytes } from "../report/format.js";
import { logFormatAdvice } from "../watch/log-format.js";
import { checkCommand } from "./check.js";
import {
  exitCodeForError,
  type GlobalOptions,
  readConfig,
  whileInterruptible,
  withReporter,
} from "./context.js";
import { haproxyConfigCommand } from "./haproxy-config.js";
import { initCommand } from "./init.js";
import { addMaintenanceCommands } from "./maintenance.js";
import { addOperationCommands } from "./operations.js";
import { packCommand } from "./pack.js";
import { printResult } from "./result.js";
import { sandboxCommand } from "./sandbox.js";
import { setupCommand } from "./setup.js";
import { printTable } from "./table.js";
import { trustCommand } from "./trust.js";

const VERSION = "0.1.0";

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function durationOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "30s" or "2m".');
  return ms;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("nexus")
    .description("Rolling, zero-downtime deploys of Node.js apps to your own servers behind Nginx.")
    .version(VERSION)
    .option("-c, --config <path>", "config file", "deploy.config.json")
    .option("--json", "one JSON event per line on stdout (schema: docs/events.md)")
    .option("--plain", "plain timestamped lines even on a terminal")
    .option("-v, --verbose", "show each remote command (values that are secrets are never shown)")
    .option("--accept-new", "trust unknown SSH host keys and record them (changed keys are still refused)")
    .option("--ssh-key <path>", "private key file, instead of ssh.privateKey")
    .option("--known-hosts <path>", "known_hosts file, instead of ssh.knownHosts")
    .addHelpText(
      "after",
      "\nExamples:\n  nexus init\n  nexus deploy --rolling\n  nexus --json deploy > events.jsonl\n  nexus status",
    )
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run nexus --help for the commands)");

  program
    .command("deploy")
    .description("pack the app, stage it on every server, then roll it out batch by batch")
    .option("--rolling", "roll server by server behind the balancer (the default and only mode)")
    .option("--dry-run", "print the plan and change nothing")
    .option("--only <servers>", "deploy only these servers (comma-separated names)", list)
    .option("--release-id <id>", "use this release id instead of <UTC time>-<git commit>")
    .option("--lock-wait <duration>", "wait this long for another deploy's lock", durationOption)
    .option(
      "--skip-unreachable",
      "leave out servers that cannot be reached (within the capacity guard) instead of aborting",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  nexus deploy --rolling\n  nexus deploy --dry-run\n  nexus deploy --only nexus-beta,nexus-gamma",
    )
    .action(
      async (opts: {
        dryRun?: boolean;
        only?: string[];
        releaseId?: string;
        lockWait?: number;
        skipUnreachable?: boolean;
      }) => {
        setExit(
          await withReporter(program, async (reporter, global) => {
            const config = readConfig(global);
            if (opts.dryRun) {
              if (opts.releaseId) assertReleaseIdFlag(opts.releaseId);
              const plan = makePlan(config, opts.releaseId ?? "<new release>", opts.only);
              requireSecrets(
                config,
                DEPLOY_NEEDS_SECRETS,
                plan.servers.map((s) => s.name),
              );
              const app = await selectConfiguredApp(config);
              for (const message of app.warnings) reporter.emit({ type: "warn", message });
              if (global.json) {
                printResult({
                  command: "plan",
                  release: plan.release,
                  batches: plan.batches.map((batch) => batch.map((s) => s.name)),
                  files: app.files.length,
                  bytes: app.bytes,
                });
                return EXIT.ok;
              }
              for (const line of describePlan(config, plan)) reporter.print(line);
              reporter.print(
                `artifact: ${app.files.length} files, ${formatBytes(app.bytes)} before compression (nexus pack --list shows them)`,
              );
              return EXIT.ok;
            }
            return whileInterruptible(reporter, async (signal, inHand) => {
              const result = await deploy(config, {
                emit: (e) => reporter.emit(e),
                signal,
                only: opts.only,
                releaseId: opts.releaseId,
                acceptNew: global.acceptNew,
                verbose: global.verbose,
                lockWaitMs: opts.lockWait,
                inHand,
                skipUnreachable: opts.skipUnreachable,
              });
              return result.exitCode;
            });
          }),
        );
      },
    );

  program
    .command("rollback")
    .description("put the previous release (or --to <id>) back on every server, with the same drain and gate")
    .option("--to <id>", "the release to go back to (default: the one before the current)")
    .option("--only <servers>", "roll back only these servers", list)
    .option("--lock-wait <duration>", "wait this long for another deploy's lock", durationOption)
    .addHelpText("after", "\nExamples:\n  nexus rollback\n  nexus rollback --to 20261126T204501Z-1a2b3c4")
    .action(async (opts: { to?: string; only?: string[]; lockWait?: number }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const config = readConfig(global);
          return whileInterruptible(reporter, async (signal, inHand) => {
            const result = await rollback(config, {
              emit: (e) => reporter.emit(e),
              signal,
              to: opts.to,
              only: opts.only,
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              lockWaitMs: opts.lockWait,
              inHand,
            });
            return result.exitCode;
          });
        }),
      );
    });

  program
    .command("drain <server>")
    .description("take a server out of rotation and wait for its in-flight requests")
    .option("--force", "drain even if that leaves too few healthy servers in rotation")
    .addHelpText("after", "\nExample:\n  nexus drain nexus-beta")
    .action(async (name: string, opts: { force?: boolean }) => {
      setExit(
        await withReporter(program, (reporter, global) =>
          drainServer(readConfig(global), name, {
            emit: (e) => reporter.emit(e),
            ...global,
            force: opts.force,
          }),
        ),
      );
    });

  program
    .command("enable <server>")
    .description("put a server back in rotation once its health check passes")
    .option("--force", "enable even if the health check fails")
    .addHelpText("after", "\nExample:\n  nexus enable nexus-beta")
    .action(async (name: string, opts: { force?: boolean }) => {
      setExit(
        await withReporter(program, (reporter, global) =>
          enableServer(readConfig(global), name, {
            emit: (e) => reporter.emit(e),
            ...global,
            force: opts.force,
          }),
        ),
      );
    });

  program
    .command("status")
    .description("per server: in rotation or drained, health, current release, PM2 process, lock")
    .addHelpText("after", "\nExample:\n  nexus status --json")
    .action(async () => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const rows = await fleetStatus(readConfig(global), { emit: (e) => reporter.emit(e), ...global });
          if (global.json) {
            printResult({ command: "status", rows });
          } else {
            printTable(
              reporter,
              ["server", "rotation", "health", "release", "process", "instances", "lock"],
              rows.map((r) => [r.server, r.rotation, r.health, r.release, r.process, r.instances, r.lock]),
            );
          }
          return rows.every((r) => r.rotation === "in rotation" && r.health.startsWith("ok"))
            ? EXIT.ok
            : EXIT.failed;
        }),
      );
    });

  program
    .command("nginx-config")
    .description(
      "print the recommended servers file, upstream block and proxy settings for the configured servers",
    )
    .option("--name <upstream>", "upstream name", "nexus_app")
    .addHelpText("after", "\nExample:\n  nexus nginx-config   # then copy each part where its comment says")
    .action((opts: { name: string }) => {
      try {
        const global = program.opts<GlobalOptions>();
        const config = readConfig(global);
        const nginx = config.balancers.find((b) => b.type === "nginx");
        const name = nginx?.upstream ?? opts.name;
        const servers = config.servers.map((s) => s.upstream);
        // The deploy user writes the servers file only; root's config includes it inside the block.
        const upstreamFile = nginx?.upstreamFile ?? `/etc/nginx/nexus/${config.app.name}-servers.conf`;
        const serversFile = renderServersFile({ servers });
        const upstreamBlock = `${renderUpstreamBlock({ name, include: upstreamFile })}\n`;
        const serverSettings = renderServerSettings(nginx?.drainTimeout ?? config.balancer.drainTimeout);
        const location = `location / {\n${renderProxySettings(name)}}\n`;
        const logFormat = logFormatAdvice(nginx?.accessLog ?? "/var/log/nginx/access.log");
        if (global.json)
          printResult({
            command: "nginx-config",
            upstream: name,
            servers,
            upstreamFile,
            serversFile,
            upstreamBlock,
            serverSettings,
            location,
            logFormat,
          });
        else
          process.stdout.write(
            `# ${upstreamFile} (balancer.upstreamFile; writable by the deploy user, nothing but server lines):\n${serversFile}\n# in your http block, in a file only root can write (e.g. /etc/nginx/conf.d/${name}.conf):\n${upstreamBlock}# in your server block:\n${serverSettings}${location}\n# in your http block (rolling.watch reads it):\n${logFormat}\n`,
          );
        setExit(EXIT.ok);
      } catch (error) {
        const { code, message } = exitCodeForError(error);
        process.stderr.write(`nexus: ${message}\n`);
        setExit(code);
      }
    });

  addMaintenanceCommands(program, setExit);
  addOperationCommands(program, setExit);
  program.addCommand(packCommand(setExit));
  program.addCommand(initCommand(setExit));
  program.addCommand(haproxyConfigCommand(setExit));
  program.addCommand(trustCommand(setExit));
  program.addCommand(checkCommand(setExit));
  program.addCommand(setupCommand(setExit));
  const sandbox = sandboxCommand(setExit);
  for (const sub of sandbox.commands)
    sub.addHelpText(
      "after",
      `\nExample:\n  nexus sandbox ${sub.name()}${sub.name() === "up" ? " --hosts 4" : ""}`,
    );
  program.addCommand(sandbox);
  program.addOption(new Option("--no-color", "no colours (NO_COLOR is honoured too)"));
  // An unknown command names the valid ones (set last: subcommands keep their own hint).
  program.showHelpAfterError(`(commands: ${program.commands.map((c) => c.name()).join(", ")}; nexus --help)`);
  // Subcommand help lists the global flags too (--config, --json, --ssh-key...).
  const showGlobals = (command: Command) => {
    command.configureHelp({ showGlobalOptions: true });
    command.commands.forEach(showGlobals);
  };
  showGlobals(program);
  return program;
}

/**
 * Keeps V8's young generation at its initial 2 × 1 MB. Under the allocation rate of packing and
 * uploading it would otherwise grow to 2 × 16 MB, and the Buffers that die in it (file reads, gzip
 * and SSH packets) hold their memory until it is collected: ~20 MB more RSS by the end of packing
 * a 200 MB app, for no speed (docs/benchmarks-transfer.md). `--max-semi-space-size` cannot be set once V8 runs;
 * the growth factor is read at each growth, and 1 means "do not grow".
 */
function keepYoungGenerationSmall(): void {
  v8.setFlagsFromString("--semi-space-growth-factor=1");
}

export async function main(argv: string[]): Promise<number> {
  keepYoungGenerationSmall();
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  // Every command, however it was added, reports usage errors through us (exit 2), not process.exit(1).
  const override = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.exitCode === 0
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    throw error;
  }
  return code;
}
