import type { DeployEvent } from "../events/events.js";
import { describeEvent, formatBytes, outcomeLine, summaryTable } from "./format.js";
import type { Reporter } from "./reporter.js";

/** One timestamped line per event, no ANSI: for CI logs and pipes. */
export class PlainReporter implements Reporter {
  private lastProgress = new Map<string, number>();

  constructor(private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) {}

  emit(event: DeployEvent): void {
    if (event.type === "progress") {
      // At most one line per quarter of the upload.
      const quarter = Math.floor((event.sent / Math.max(1, event.total)) * 4);
      if ((this.lastProgress.get(event.server) ?? -1) < quarter && quarter < 4) {
        this.lastProgress.set(event.server, quarter);
        this.line(`${event.server}: upload ${formatBytes(event.sent)} / ${formatBytes(event.total)}`);
      }
      return;
    }
    if (event.type === "summary") {
      this.write("");
      for (const row of summaryTable(event.rows)) this.write(row);
      this.write("");
      this.line(outcomeLine(event));
      return;
    }
    const text = describeEvent(event);
    if (text !== undefined) for (const line of text.split("\n")) this.line(line);
  }

  print(line: string): void {
    process.stdout.write(`${line}\n`);
  }

  private line(text: string): void {
    this.write(`${new Date().toISOString().slice(11, 19)} ${text}`);
  }

  close(): void {}
}
