import { Command } from "commander";
import { runCheck } from "../check/run.js";
import type { CheckReport } from "../check/types.js";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { examples } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { EXIT } from "../errors.js";
import { renderTable } from "../report/format.js";

const MARK = { ok: "ok", warn: "WARN", fail: "FAIL" } as const;

export function formatCheck(result: CheckReport): string[] {
  const lines = renderTable(
    ["TARGET", "CHECK", "STATUS", "DETAIL"],
    result.items.map((i) => [i.target, i.check, MARK[i.status], i.detail]),
  );
  const problems = result.items.filter((i) => i.status !== "ok" && i.fix);
  if (problems.length > 0) {
    lines.push("", "To fix:");
    for (const p of problems) lines.push(`  ${p.target} ${p.check}: ${p.fix}`);
  }
  const failed = result.items.filter((i) => i.status === "fail").length;
  lines.push("", failed === 0 ? "all checks passed" : `${failed} check(s) failed`);
  return lines;
}

/** `nexus check`: read-only readiness of every server and the balancer, each problem with its fix. */
export function checkCommand(setExit: SetExit): Command {
  return new Command("check")
    .description(
      "check that the servers and the balancer are ready for nexus (read-only), each problem with its fix",
    )
    .addHelpText("after", examples("nexus check", "nexus --json check"))
    .action(
      action(
        setExit,
        async ({ global }) => {
          const result = await runCheck(readConfig(global));
          if (global.json) printResult({ command: "check", ...result });
          else process.stdout.write(`${formatCheck(result).join("\n")}\n`);
          return result.ok ? EXIT.ok : EXIT.failed;
        },
        "nexus check",
      ),
    );
}
