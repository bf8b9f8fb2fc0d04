import { Command } from "commander";
import { runCheck } from "../check/run.js";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { EXIT } from "../errors.js";
import { runSetup } from "../setup/run.js";
import { formatCheck } from "./check.js";

interface SetupFlags {
  dryRun?: boolean;
  yes?: boolean;
  sudo?: boolean;
  loginKey?: string;
}

/** `nexus setup`: makes fresh servers ready for nexus (idempotent), then runs `nexus check`. */
export function setupCommand(setExit: SetExit): Command {
  return new Command("setup")
    .description(
      "make the servers ready: deploy key, host keys, deploy path, the balancer's upstream file and sudo rule; then check",
    )
    .option("--dry-run", "show what would be done, change nothing")
    .option("-y, --yes", "trust unknown host keys after showing their fingerprints, without asking")
    .option("--sudo", "install the sudoers rule (and a missing upstream file) through sudo -n")
    .option("--login-key <path>", "another private key to log in with once, to install the deploy key")
    .addHelpText(
      "after",
      "\nA server that accepts no key yet: nexus logs in once with --login-key, the agent, or a password\n(prompted on a terminal, or NEXUS_SSH_PASSWORD) to install the deploy key.\n\nExamples:\n  nexus setup --dry-run\n  nexus setup\n  NEXUS_SSH_PASSWORD=... nexus setup --yes",
    )
    .action(
      action(
        setExit,
        async ({ global }, flags: SetupFlags) => {
          // With --json, stdout holds only the check's result line; the human lines go to stderr.
          const say = (line: string) => (global.json ? process.stderr : process.stdout).write(`${line}\n`);
          const config = readConfig(global);
          await runSetup(config, {
            dryRun: flags.dryRun,
            yes: flags.yes,
            sudo: flags.sudo,
            ...(flags.loginKey ? { loginKey: flags.loginKey } : {}),
            say,
          });
          if (flags.dryRun) return EXIT.ok;
          say("");
          const result = await runCheck(config);
          if (global.json) printResult({ command: "check", ...result });
          else for (const line of formatCheck(result)) say(line);
          return result.ok ? EXIT.ok : EXIT.failed;
        },
        "nexus setup",
      ),
    );
}
