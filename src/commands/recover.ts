import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { readConfig, whileInterruptible } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { recover } from "../deploy/recover.js";

/** `nexus recover`: after a killed deploy, every server it touched back on its previous release. */
export function recoverCommand(setExit: SetExit): Command {
  return new Command("recover")
    .description(
      "after a killed deploy: put every server it touched back on its previous release, in rotation",
    )
    .option(
      "--force",
      "take over a lock whose holder may be alive (another machine or container, a reused pid): only when it is dead",
    )
    .addHelpText("after", examples("nexus recover"))
    .action(
      action(setExit, async ({ reporter, global }, flags: { force?: boolean }) =>
        whileInterruptible(reporter, (signal) =>
          recover(readConfig(global), {
            emit: (e) => reporter.emit(e),
            signal,
            acceptNew: global.acceptNew,
            verbose: global.verbose,
            force: flags.force,
          }),
        ),
      ),
    );
}
