import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import { startOf } from "../start/load.js";
import { describeStart } from "../start/start.js";
import type { CheckItem } from "./types.js";

/** What PM2 will start (app.start resolved), or why nexus cannot start it without a shell. */
export function startItem(config: Config): CheckItem {
  const item = { target: "app", check: "start" };
  try {
    const start = startOf(config);
    if (start.warnings.length > 0)
      return { ...item, status: "warn", detail: `${describeStart(start)}; ${start.warnings.join("; ")}` };
    return { ...item, status: "ok", detail: describeStart(start) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return {
      ...item,
      status: "fail",
      detail: error.problems.join("; "),
      fix: "a deploy stops on it (exit 2): change app.start or the package script as the message says (docs/apps.md, Start commands)",
    };
  }
}
