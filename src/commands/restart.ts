import { Command } from "commander";
import { action, rollAction, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples, list, STRATEGY_HELP, strategyOption, withStrategy } from "../cli/options.js";
import { restart } from "../deploy/restart.js";
import type { RolloutStrategyName } from "../rollout/strategies.js";

/** `nexus restart`: the current release restarted everywhere with the deploy's drain and gate. */
export function restartCommand(setExit: SetExit): Command {
  return new Command("restart")
    .description(
      "restart the current release on every server with the same drain and gate, nothing transferred",
    )
    .option("--rolling", "server by server behind the balancer (the default and only mode)")
    .option("--only <servers>", "restart only these servers", list)
    .option("--strategy <name>", STRATEGY_HELP, strategyOption)
    .addHelpText("after", examples("nexus restart --rolling", "nexus restart --only nexus-beta"))
    .action(
      action(setExit, async (context, flags: { only?: string[]; strategy?: RolloutStrategyName }) => {
        const config = withStrategy(readConfig(context.global), flags.strategy);
        return rollAction(context, (options) => restart(config, { ...options, only: flags.only }));
      }),
    );
}
