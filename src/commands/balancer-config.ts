import { Command } from "commander";
import type { ConfigCommand } from "../balancer/driver.js";
import { BALANCER_DRIVERS } from "../balancer/drivers.js";
import { action, type CommandFactory, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { EXIT } from "../errors.js";
import type { CommandResult } from "../events/results.js";

/** `nexus nginx-config`, `nexus haproxy-config`…: each balancer driver's recommended config. */
export const balancerConfigCommands: CommandFactory[] = BALANCER_DRIVERS.map(
  (driver) => (setExit: SetExit) => balancerConfigCommand(driver.configCommand, setExit),
);

function balancerConfigCommand(spec: ConfigCommand, setExit: SetExit): Command {
  const command = new Command(spec.name).description(spec.description);
  for (const option of spec.options) command.option(option.flags, option.description, option.default);
  return command.addHelpText("after", examples(...spec.examples)).action(
    action(
      setExit,
      ({ global }, flags: Record<string, unknown>) => {
        const { text, result } = spec.render(readConfig(global), flags);
        if (global.json) printResult(result as CommandResult);
        else process.stdout.write(text);
        return EXIT.ok;
      },
      "nexus",
    ),
  );
}
