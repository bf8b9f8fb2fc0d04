import type { CommandResult } from "../events/results.js";
import { JSON_SCHEMA_VERSION } from "../report/json.js";

/**
 * --json: a command's structured answer (status rows, releases, init, nginx-config, pack) as one
 * `result` line on stdout, with the same envelope as the events (docs/events.md).
 */
export function printResult(result: CommandResult): void {
  process.stdout.write(
    `${JSON.stringify({ v: JSON_SCHEMA_VERSION, time: new Date().toISOString(), type: "result", ...result })}\n`,
  );
}
