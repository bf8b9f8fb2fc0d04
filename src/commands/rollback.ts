import { Command } from "commander";
import { action, rollAction, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import {
  durationOption,
  examples,
  list,
  STRATEGY_HELP,
  strategyOption,
  withStrategy,
} from "../cli/options.js";
import { rollback } from "../deploy/rollback.js";
import type { RolloutStrategyName } from "../rollout/strategies.js";

/** `nexus rollback`: the previous release (or --to) back on every server, with the deploy's discipline. */
export function rollbackCommand(setExit: SetExit): Command {
  return new Command("rollback")
    .description("put the previous release (or --to <id>) back on every server, with the same drain and gate")
    .option("--to <id>", "the release to go back to (default: the one before the current)")
    .option("--only <servers>", "roll back only these servers", list)
    .option("--strategy <name>", STRATEGY_HELP, strategyOption)
    .option("--lock-wait <duration>", "wait this long for another deploy's lock", durationOption)
    .addHelpText("after", examples("nexus rollback", "nexus rollback --to 20261126T204501Z-1a2b3c4"))
    .action(
      action(
        setExit,
        async (
          context,
          flags: { to?: string; only?: string[]; lockWait?: number; strategy?: RolloutStrategyName },
        ) => {
          const config = withStrategy(readConfig(context.global), flags.strategy);
          return rollAction(context, (options) =>
            rollback(config, { ...options, to: flags.to, only: flags.only, lockWaitMs: flags.lockWait }),
          );
        },
      ),
    );
}
