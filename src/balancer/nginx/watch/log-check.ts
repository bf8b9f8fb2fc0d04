import { nexusCommand } from "../../../config/invocation.js";
import { script } from "../../../remote/op.js";
import { scriptFile } from "../../../remote/script-file.js";
import type { CommandRunner } from "../../../ssh/session.js";
import { addCounts, type Counts } from "../../../watch/traffic.js";
import { parseAccessLine, tallyLines } from "./access-log.js";
import {
  dumpLogsInNexusFormat,
  dumpLogsUnescaped,
  LOG_FORMAT_NAME,
  logFormatAdvice,
  REQUIRED_VARIABLES,
  scanNginxDump,
} from "./log-format.js";

/** How much of the log's end is read before the deploy: its format, and the fleet's rate then. */
export const SAMPLE_BYTES = 256 * 1024;

/** $1 the log, $2 bytes: prints "missing", "unreadable", or "ok <size>" and the log's last bytes. */
export const SAMPLE_LOG_SCRIPT = scriptFile(import.meta.url, "sample-log.sh");

/** $1 the Nginx test command: runs it with -T (test and dump the config), its errors dropped. */
export const DUMP_CONFIG_SCRIPT = scriptFile(import.meta.url, "dump-config.sh");

export function sampleLogCommand(path: string, bytes = SAMPLE_BYTES): string {
  return script(SAMPLE_LOG_SCRIPT, path, Number(bytes));
}

export type LogSample = { state: "missing" | "unreadable" } | { state: "ok"; size: number; lines: string[] };

export function parseSample(output: string, bytes = SAMPLE_BYTES): LogSample {
  const newline = output.indexOf("\n");
  const head = (newline < 0 ? output : output.slice(0, newline)).trim();
  if (head === "missing" || head === "unreadable") return { state: head };
  const size = Number.parseInt(head.replace(/^ok\s+/, ""), 10) || 0;
  const data = newline < 0 ? "" : output.slice(newline + 1);
  const lines = data.split("\n");
  lines.pop(); // after the last newline: nothing, or a line still being written
  // Read from the middle of the file: the first line is cut.
  if (size > bytes) lines.shift();
  return { state: "ok", size, lines: lines.filter((line) => line.trim() !== "") };
}

export type FormatVerdict =
  | { ok: true; baseline: Counts }
  | { ok: false; problem: string }
  | { ok: "unknown" };

/**
 * Whether the log is written in the nexus format, from its last lines: the newest line decides
 * (a format just switched on leaves older lines in the old one). With no line at all, undecided.
 * The baseline is every upstream try in the sample to `addresses` (the fleet's: a shared log also
 * holds other sites', whose failures must not raise this fleet's limit); all when not given.
 */
export function judgeSample(lines: readonly string[], addresses?: readonly string[]): FormatVerdict {
  const last = lines[lines.length - 1];
  if (last === undefined) return { ok: "unknown" };
  if (!parseAccessLine(last)) {
    return {
      ok: false,
      problem: `its last line lacks the upstream fields (${REQUIRED_VARIABLES.join(", ")}) in the ${LOG_FORMAT_NAME} format: ${clip(last)}`,
    };
  }
  const perAddress = new Map<string, Counts>();
  tallyLines(lines, perAddress);
  const baseline: Counts = { requests: 0, failures: 0, latencies: [] };
  for (const [address, counts] of perAddress) {
    if (addresses && !addresses.includes(address)) continue;
    addCounts(baseline, counts);
  }
  return { ok: true, baseline };
}

function clip(line: string): string {
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

export interface AccessLogCheck {
  /** The fleet's requests and failures in the last lines of the log before the deploy. */
  baseline?: Counts;
  /** A warning to show (the format could not be verified yet). */
  warning?: string;
}

export class AccessLogProblem extends Error {}

/**
 * Before anything is drained: the access log exists, nexus can read it, and it is written in a
 * format with the upstream fields. Looks at its last lines; an empty log is judged from the
 * running config (`<testCommand> -T`), and so is a missing one: one the running config writes in
 * the format is being rotated (a warning), any other is a wrong path. Throws AccessLogProblem
 * naming the fix.
 */
export async function checkAccessLog(
  runner: CommandRunner,
  options: { path: string; testCommand: string; addresses?: readonly string[] },
): Promise<AccessLogCheck> {
  const { path } = options;
  const where = `${path} on ${runner.name}`;
  const fix = `add this to Nginx's http block (\`${nexusCommand("nginx-config")}\` prints it), then reload Nginx:\n${logFormatAdvice(path)}`;
  const sample = parseSample((await runner.exec(sampleLogCommand(path))).stdout);
  if (sample.state === "unreadable")
    throw new AccessLogProblem(
      `${where} is not readable by the SSH user: let it read the log (e.g. the adm group)`,
    );
  const missing = `${where} does not exist: set balancer.accessLog to the file Nginx writes, or ${fix}`;
  const verdict = sample.state === "ok" ? judgeSample(sample.lines, options.addresses) : undefined;
  if (verdict?.ok === false) throw new AccessLogProblem(`${where}: ${verdict.problem}; ${fix}`);

  // The running config tells what the log cannot: whether a client can forge its lines, and,
  // when it is empty or missing (being rotated: logrotate moved it, Nginx has not reopened it
  // yet), whether it is written in the format at all.
  const dump = await runner.exec(script(DUMP_CONFIG_SCRIPT, options.testCommand));
  const shown = dump.code === 0 && /\blog_format\b|\baccess_log\b|\bhttp\s*\{/.test(dump.stdout);
  const finding = shown ? scanNginxDump(dump.stdout) : undefined;
  if (finding && dumpLogsUnescaped(finding, path))
    throw new AccessLogProblem(
      `${where} is written with escape=none: a client's newline would forge whole lines; drop escape=none from its log_format, or use the ${LOG_FORMAT_NAME} format: ${fix}`,
    );
  if (verdict?.ok === true) return { baseline: verdict.baseline };
  if (sample.state === "missing") {
    // A path the running config does not write in the format is wrong, not being rotated.
    if (!finding || !dumpLogsInNexusFormat(finding, path)) throw new AccessLogProblem(missing);
    return {
      warning: `${where} does not exist right now (being rotated?): the running Nginx config writes it in the ${LOG_FORMAT_NAME} format, so the watch reads it from its start once it is there`,
    };
  }
  if (!finding) {
    return {
      warning: `${where} is empty and \`${options.testCommand} -T\` did not show the config: its format is checked once traffic arrives`,
    };
  }
  if (!dumpLogsInNexusFormat(finding, path))
    throw new AccessLogProblem(
      `${where}: the running Nginx config does not write it with a format ending in the upstream fields; ${fix}`,
    );
  return {};
}
