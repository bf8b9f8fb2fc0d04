import { Command } from "commander";
import { assertEntriesShip } from "../artifact/entries.js";
import { selectConfiguredApp } from "../artifact/pack.js";
import { workspaceOf } from "../artifact/workspace.js";
import { action, type EventsContext, rollAction, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import {
  durationOption,
  examples,
  list,
  STRATEGY_HELP,
  strategyOption,
  withStrategy,
} from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { nexusCommand } from "../config/invocation.js";
import { requireSecrets } from "../config/load.js";
import { assertReleaseIdFlag, DEPLOY_NEEDS_SECRETS, deploy } from "../deploy/deploy.js";
import { describePlan, makePlan } from "../deploy/plan.js";
import { EXIT } from "../errors.js";
import { formatBytes } from "../report/format.js";
import type { RolloutStrategyName } from "../rollout/strategies.js";
import { startOf } from "../start/load.js";
import { describeStart } from "../start/start.js";

interface DeployFlags {
  dryRun?: boolean;
  only?: string[];
  releaseId?: string;
  lockWait?: number;
  skipUnreachable?: boolean;
  strategy?: RolloutStrategyName;
}

/** `nexus deploy`: pack, stage on every server, roll out batch by batch (or, --dry-run, the plan). */
export function deployCommand(setExit: SetExit): Command {
  return new Command("deploy")
    .description("pack the app, stage it on every server, then roll it out batch by batch")
    .option("--rolling", "roll server by server behind the balancer (the default and only mode)")
    .option("--dry-run", "print the plan and change nothing")
    .option("--only <servers>", "deploy only these servers (comma-separated names)", list)
    .option("--strategy <name>", STRATEGY_HELP, strategyOption)
    .option("--release-id <id>", "use this release id instead of <UTC time>-<git commit>")
    .option("--lock-wait <duration>", "wait this long for another deploy's lock", durationOption)
    .option(
      "--skip-unreachable",
      "leave out servers that cannot be reached (within the capacity guard) instead of aborting",
    )
    .addHelpText(
      "after",
      examples(
        "nexus deploy --rolling",
        "nexus deploy --dry-run",
        "nexus deploy --only nexus-beta,nexus-gamma",
      ),
    )
    .action(
      action(setExit, async (context, flags: DeployFlags) => {
        if (flags.dryRun) return printPlan(context, flags);
        const config = withStrategy(readConfig(context.global), flags.strategy);
        return rollAction(context, (options) =>
          deploy(config, {
            ...options,
            only: flags.only,
            releaseId: flags.releaseId,
            lockWaitMs: flags.lockWait,
            skipUnreachable: flags.skipUnreachable,
          }),
        );
      }),
    );
}

/** --dry-run: the plan a deploy would carry out, and what the artifact would hold; nothing is connected to. */
async function printPlan({ reporter, global }: EventsContext, flags: DeployFlags): Promise<number> {
  const config = withStrategy(readConfig(global), flags.strategy);
  if (flags.releaseId) assertReleaseIdFlag(flags.releaseId);
  const plan = makePlan(config, flags.releaseId ?? "<new release>", flags.only);
  requireSecrets(
    config,
    DEPLOY_NEEDS_SECRETS,
    plan.servers.map((s) => s.name),
  );
  const app = await selectConfiguredApp(config);
  // The build does not run in a dry run: what it makes need not exist yet.
  await assertEntriesShip(config, { built: !config.app.build });
  const start = startOf(config);
  for (const message of [...app.warnings, ...start.warnings]) reporter.emit({ type: "warn", message });
  if (global.json) {
    printResult({
      command: "plan",
      release: plan.release,
      batches: plan.batches.map((batch) => batch.map((s) => s.name)),
      files: app.files.length,
      bytes: app.bytes,
      start: describeStart(start),
    });
    return EXIT.ok;
  }
  for (const line of describePlan(config, plan)) reporter.print(line);
  const workspace = workspaceOf(config);
  if (workspace)
    reporter.print(`workspace: ${workspace.name} in ${workspace.dir} (ships ${workspace.dirs.join(", ")})`);
  reporter.print(`start: ${describeStart(start)}`);
  reporter.print(
    `artifact: ${app.files.length} files, ${formatBytes(app.bytes)} before compression (${nexusCommand("pack", "--list")} shows them)`,
  );
  return EXIT.ok;
}
