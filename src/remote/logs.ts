import { type RemoteOp, script } from "./op.js";
import { scriptFile } from "./script-file.js";

/**
 * $1 lines, $2 "1" to follow, $3 the log file. Following, `tail -F` runs until stdin closes
 * (Ctrl-C here closes it, and so does a dropped connection), then it is stopped: nothing is left
 * running on the server.
 */
export const LOGS_SCRIPT = scriptFile(import.meta.url, "logs.sh");

/** The command that prints (or follows) the last `lines` lines of a log file. */
export function tailLog(file: string, lines: number, follow: boolean): RemoteOp<void> {
  return {
    what: "reading the log",
    command: script(LOGS_SCRIPT, Math.max(0, Math.floor(lines)), follow ? 1 : 0, file),
    parse: () => undefined,
  };
}
