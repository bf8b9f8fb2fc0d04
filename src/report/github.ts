import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import path from "node:path";
import type { DeployEvent, Outcome, SummaryRow } from "../events/events.js";
import { formatConnectionsCut, formatWatched, outcomeLine } from "./format.js";
import { PlainReporter } from "./plain.js";
import type { Reporter } from "./reporter.js";

/** Data of a workflow command (`::error::<data>`): %, CR and LF are escaped. */
export function escapeData(text: string): string {
  return text.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** A property of a workflow command (`title=<value>`): also : and , are escaped. */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** `name=value` for $GITHUB_OUTPUT; a value with a line break uses the heredoc form. */
export function outputEntry(name: string, value: string): string {
  if (!/[\r\n]/.test(value)) return `${name}=${value}\n`;
  const delimiter = `ghadelimiter_${randomUUID()}`;
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

const OUTCOME_MARK: Record<Outcome, string> = {
  success: "✅",
  failed: "❌",
  "needs-human": "🚨",
  interrupted: "⚠️",
};

function cell(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\|/g, "\\|")
    .replace(/\r?\n/g, "<br>");
}

/** The markdown appended to $GITHUB_STEP_SUMMARY for a summary event. */
export function summaryMarkdown(command: string, event: Extract<DeployEvent, { type: "summary" }>): string {
  const watch = event.rows.some((r) => r.watched !== undefined);
  const cut = event.rows.some((r) => r.connectionsCut !== undefined);
  const rows = event.rows.map(
    (r: SummaryRow) =>
      `| ${cell(r.server)} | ${cell(r.result)} | ${r.release ? `\`${cell(r.release)}\`` : "-"} | ${
        r.outOfRotation !== undefined ? `${r.outOfRotation.toFixed(2)}s` : "-"
      } | ${watch ? `${formatWatched(r.watched)} | ` : ""}${
        cut ? `${formatConnectionsCut(r.connectionsCut)} | ` : ""
      }${cell(r.note ?? "")} |`,
  );
  return [
    `### ${OUTCOME_MARK[event.outcome]} nexus ${command}: ${cell(outcomeLine(event))}`,
    "",
    `| server | result | release | out of rotation | ${watch ? "watched | " : ""}${cut ? "connections cut | " : ""}note |`,
    `| --- | --- | --- | --- | ${watch ? "--- | " : ""}${cut ? "--- | " : ""}--- |`,
    ...rows,
    "",
    "",
  ].join("\n");
}

/** The release a summary leaves in service: none when no server was deployed or rolled back to it. */
export function servedRelease(event: Extract<DeployEvent, { type: "summary" }>): string | undefined {
  const release = event.release;
  if (!release) return undefined;
  const serving = event.rows.some(
    (r) => r.release === release && (r.result === "deployed" || r.result === "rolled back"),
  );
  return serving ? release : undefined;
}

/** The step summary of a command that stopped before its summary table. */
export function failureMarkdown(command: string, errors: readonly string[]): string {
  return [
    `### ${OUTCOME_MARK.failed} nexus ${command || "command"}: failed, nothing deployed`,
    "",
    ...errors.map((e) => `> ${cell(e)}`),
    "",
    "",
  ].join("\n");
}

export interface GithubReporterOptions {
  /** Where GITHUB_STEP_SUMMARY and GITHUB_OUTPUT are read from. */
  env?: NodeJS.ProcessEnv;
  /** A log line (default: stderr; the runner reads workflow commands from both streams). */
  write?: (line: string) => void;
  /** Appends to a file (default: appendFileSync). */
  append?: (file: string, text: string) => void;
}

/**
 * GITHUB_ACTIONS=true: the plain timestamped lines, folded in one `::group::` per phase. Groups
 * cannot nest and a group only ends when the next starts, so they follow the phases (pack,
 * preflight, stage, each roll batch: with the default batch size of 1 that is one group per
 * server) rather than servers, whose steps interleave while staging. Errors, failed gates and
 * warnings become annotations; the summary table is appended to $GITHUB_STEP_SUMMARY as
 * markdown, and `release` and `result` are written to $GITHUB_OUTPUT.
 */
export class GithubReporter implements Reporter {
  private readonly plain: PlainReporter;
  private readonly write: (line: string) => void;
  private readonly append: (file: string, text: string) => void;
  private readonly env: NodeJS.ProcessEnv;
  private inGroup = false;
  private command = "";
  private release: string | undefined;
  private result: Outcome | undefined;
  private failed = false;
  private closed = false;
  private summarized = false;
  /** The errors so far: the step summary of a command that ended before its own summary. */
  private errors: string[] = [];

  constructor(options: GithubReporterOptions = {}) {
    this.env = options.env ?? process.env;
    this.write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.append = options.append ?? ((file, text) => appendFileSync(file, text));
    this.plain = new PlainReporter(this.write);
  }

  emit(event: DeployEvent): void {
    switch (event.type) {
      case "begin":
        // The release is an output only once the summary says it serves somewhere.
        this.command = event.command;
        this.plain.emit(event);
        return;
      case "phase":
        this.group(`${event.phase}: ${event.message}`);
        this.plain.emit(event);
        return;
      case "warn":
        this.annotate("warning", event.server, event.message);
        return;
      case "error":
        this.failed = true;
        this.errors.push(event.message);
        this.annotate("error", event.server, event.message, event.file ? event : undefined);
        return;
      case "gate-failed":
        this.plain.emit(event);
        this.annotate("error", event.server, `health gate failed: ${event.reason}`);
        return;
      case "watch":
        this.plain.emit(event);
        if (event.result === "breach") this.annotate("error", event.server, `watch failed: ${event.message}`);
        if (event.result === "inconclusive")
          this.annotate("error", event.server, `watch inconclusive: ${event.message}`);
        return;
      case "summary":
        this.endGroup();
        this.plain.emit(event);
        this.result = event.outcome;
        this.release = servedRelease(event);
        this.summarized = true;
        this.appendTo("GITHUB_STEP_SUMMARY", summaryMarkdown(this.command || "command", event));
        return;
      default:
        this.plain.emit(event);
    }
  }

  print(line: string): void {
    this.plain.print(line);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endGroup();
    const result = this.result ?? (this.failed ? "failed" : undefined);
    // Every outcome gets a step summary: one that ended before its own (every server refused
    // the connection, a config error) says so, with its errors.
    if (!this.summarized && this.failed)
      this.appendTo("GITHUB_STEP_SUMMARY", failureMarkdown(this.command, this.errors));
    let outputs = "";
    if (this.release) outputs += outputEntry("release", this.release);
    if (result) outputs += outputEntry("result", result);
    if (outputs) this.appendTo("GITHUB_OUTPUT", outputs);
    this.plain.close();
  }

  private group(title: string): void {
    this.endGroup();
    this.write(`::group::${escapeData(title)}`);
    this.inGroup = true;
  }

  private endGroup(): void {
    if (!this.inGroup) return;
    this.write("::endgroup::");
    this.inGroup = false;
  }

  private annotate(
    level: "error" | "warning",
    server: string | undefined,
    message: string,
    place?: { file?: string; line?: number; column?: number },
  ): void {
    const title = server ? `nexus: ${server}` : "nexus";
    const properties = [
      ...(place?.file ? [`file=${escapeProperty(this.workspacePath(place.file))}`] : []),
      ...(place?.line ? [`line=${place.line}`] : []),
      ...(place?.column ? [`col=${place.column}`] : []),
      `title=${escapeProperty(title)}`,
    ];
    this.write(`::${level} ${properties.join(",")}::${escapeData(message)}`);
  }

  /** Annotations name files from the repository's root ($GITHUB_WORKSPACE), not from nexus's cwd. */
  private workspacePath(file: string): string {
    const workspace = this.env.GITHUB_WORKSPACE;
    if (!workspace) return file;
    const relative = path.relative(workspace, path.resolve(file));
    return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
  }

  private appendTo(variable: "GITHUB_STEP_SUMMARY" | "GITHUB_OUTPUT", text: string): void {
    const file = this.env[variable];
    if (!file) return;
    try {
      this.append(file, text);
    } catch (error) {
      this.write(
        `::warning title=nexus::${escapeData(`cannot write $${variable}: ${(error as Error).message}`)}`,
      );
    }
  }
}
