import v8 from "node:v8";
import { Command, CommanderError, Option } from "commander";
import { balancerConfigCommands } from "../commands/balancer-config.js";
import { checkCommand } from "../commands/check.js";
import { configCommand } from "../commands/config.js";
import { deployCommand } from "../commands/deploy.js";
import { drainCommand } from "../commands/drain.js";
import { enableCommand } from "../commands/enable.js";
import { execCommand } from "../commands/exec.js";
import { initCommand } from "../commands/init.js";
import { logsCommand } from "../commands/logs.js";
import { packCommand } from "../commands/pack.js";
import { recoverCommand } from "../commands/recover.js";
import { releasesCommand } from "../commands/releases.js";
import { restartCommand } from "../commands/restart.js";
import { rollbackCommand } from "../commands/rollback.js";
import { sandboxCommand } from "../commands/sandbox.js";
import { setupCommand } from "../commands/setup.js";
import { statusCommand } from "../commands/status.js";
import { trustCommand } from "../commands/trust.js";
import { unlockCommand } from "../commands/unlock.js";
import { EXIT } from "../errors.js";
import type { CommandFactory, SetExit } from "./action.js";
import { examples } from "./options.js";

const VERSION = "0.1.0";

/** Every command, in the order `nexus --help` lists them; each one module of src/commands/. */
const COMMANDS: readonly CommandFactory[] = [
  deployCommand,
  rollbackCommand,
  drainCommand,
  enableCommand,
  statusCommand,
  recoverCommand,
  unlockCommand,
  releasesCommand,
  logsCommand,
  execCommand,
  restartCommand,
  configCommand,
  ...balancerConfigCommands,
  packCommand,
  initCommand,
  trustCommand,
  checkCommand,
  setupCommand,
  sandboxCommand,
];

export function buildProgram(setExit: SetExit): Command {
  const program = new Command("nexus")
    .description("Rolling, zero-downtime deploys of Node.js apps to your own servers behind Nginx.")
    .version(VERSION)
    .option("-c, --config <path>", 'config file ("-": read it from standard input)', "deploy.config.json")
    .addOption(
      new Option(
        "-d, --destination <name>",
        "read deploy.<name>.json on top of the config (staging, production…)",
      ).env("NEXUS_DESTINATION"),
    )
    .option("--json", "one JSON event per line on stdout (schema: docs/events.md)")
    .option("--plain", "plain timestamped lines even on a terminal")
    .option("-v, --verbose", "show each remote command (values that are secrets are never shown)")
    .option("--accept-new", "trust unknown SSH host keys and record them (changed keys are still refused)")
    .option("--ssh-key <path>", "private key file, instead of ssh.privateKey")
    .option("--known-hosts <path>", "known_hosts file, instead of ssh.knownHosts")
    .addHelpText(
      "after",
      examples("nexus init", "nexus deploy --rolling", "nexus --json deploy > events.jsonl", "nexus status"),
    )
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run nexus --help for the commands)");
  for (const make of COMMANDS) {
    const command = make(setExit);
    // As `program.command()` would: the error hints and help settings of the program.
    command.copyInheritedSettings(program);
    program.addCommand(command);
  }
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
