import { Command } from "commander";
import { action, rollAction, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { durationOption, examples, list } from "../cli/options.js";
import { rollback } from "../deploy/rollback.js";

/** `nexus rollback`: the previous release (or --to) back on every server, with the deploy's discipline. */
export function rollbackCommand(setExit: SetExit): Command {
  return new Command("rollback")
    .description("put the previous release (or --to <id>) back on every server, with the same drain and gate")
    .option("--to <id>", "the release to go back to (default: the one before the current)")
    .option("--only <servers>", "roll back only these servers", list)
    .option("--lock-wait <duration>", "wait this long for another deploy's lock", durationOption)
    .addHelpText("after", examples("nexus rollback", "nexus rollback --to 20261126T204501Z-1a2b3c4"))
    .action(
      action(setExit, async (context, flags: { to?: string; only?: string[]; lockWait?: number }) => {
        const config = readConfig(context.global);
        return rollAction(context, (options) =>
          rollback(config, { ...options, to: flags.to, only: flags.only, lockWaitMs: flags.lockWait }),
        );
      }),
    );
}
