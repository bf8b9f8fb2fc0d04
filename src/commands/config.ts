import { Command, Option } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import type { Config } from "../config/load.js";
import { EXIT } from "../errors.js";
import { redactDeep, secretRedactor } from "../report/redact.js";

/** `nexus config`: the config as nexus resolved it, every secret masked. */
export function configCommand(setExit: SetExit): Command {
  return new Command("config")
    .description("print the config as nexus resolved it (defaults filled, fromEnv read), secrets masked")
    .addHelpText("after", examples("nexus config", "nexus -d staging config", "nexus --json config"))
    .addOption(new Option("--json", "one line of JSON (same as the global --json)").hideHelp())
    .action(
      action(
        setExit,
        ({ global }, flags: { json?: boolean }) => {
          const masked = maskedConfig(readConfig(global));
          if (global.json || flags.json) printResult({ command: "config", config: masked });
          else process.stdout.write(`${JSON.stringify(masked, null, 2)}\n`);
          return EXIT.ok;
        },
        "nexus",
      ),
    );
}

/** The config as nexus resolved it, with every secret masked. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const redact = secretRedactor(config);
  const servers = config.servers.map(
    ({ explicit: _explicit, secretKeys, envSources, missingSecrets, env, ...rest }) => ({
      ...rest,
      env: Object.fromEntries([
        ...Object.entries(env).map(([key, value]) => {
          const source = envSources?.[key];
          if (source || secretKeys?.includes(key)) return [key, `*** (from $${source ?? "?"})`];
          return [key, redact(value)];
        }),
        // Not an error here: only the commands that write the app's environment need them.
        ...(missingSecrets ?? []).map((m) => [
          m.key,
          `(from $${m.variable}: ${m.empty ? "empty" : "not set"} here)`,
        ]),
      ]),
    }),
  );
  // String by string: masking the JSON text turned a number equal to a secret into bare ***.
  return redactDeep({ ...config, servers }, redact) as Record<string, unknown>;
}
