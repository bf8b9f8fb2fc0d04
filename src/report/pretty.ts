import chalk from "chalk";
import ora, { type Ora } from "ora";
import type { DeployEvent } from "../events/events.js";
import { describeEvent, formatBytes, outcomeLine, summaryTable } from "./format.js";
import type { Reporter } from "./reporter.js";
import { terminalWidth } from "./terminal.js";

/** For a terminal: one spinner naming every step in flight, a persisted line per finished step. */
export class PrettyReporter implements Reporter {
  private spinner: Ora = ora({ stream: process.stderr, discardStdin: false });
  private active = new Map<string, { label: string; since: number }>();
  private ticker: NodeJS.Timeout | undefined;
  // ora divides by the width: at 0 columns its next clear() never ends (and no signal handler runs).
  // A resize to no width stops the spinner at once, before ora's own timer renders again.
  private readonly onResize = () => {
    if (!this.hasWidth()) this.stopSpinner();
  };

  constructor() {
    process.stderr.on("resize", this.onResize);
  }

  emit(event: DeployEvent): void {
    switch (event.type) {
      case "step": {
        const key = `${event.server}:${event.step}`;
        if (event.status === "start") {
          this.active.set(key, { label: `${event.server} ${event.step}`, since: Date.now() });
          this.refresh();
          return;
        }
        this.active.delete(key);
        const text = describeEvent(event) ?? "";
        this.persist(
          event.status === "done" ? chalk.green("✔") : chalk.red("✖"),
          event.status === "done" ? text : chalk.red(text),
        );
        return;
      }
      case "progress": {
        const key = `${event.server}:upload`;
        const entry = this.active.get(key);
        if (entry) {
          const pct = Math.floor((event.sent / Math.max(1, event.total)) * 100);
          const seconds = (Date.now() - entry.since) / 1000;
          const rate = seconds > 0.2 ? `, ${formatBytes(event.sent / seconds)}/s` : "";
          entry.label = `${event.server} upload ${pct}% of ${formatBytes(event.total)}${rate}`;
          this.refresh();
        }
        return;
      }
      case "phase":
        this.persist(chalk.cyan("●"), chalk.bold(`${event.phase}`) + chalk.dim(` ${event.message}`));
        return;
      case "warn":
        this.persist(chalk.yellow("⚠"), chalk.yellow(describeEvent(event) ?? ""));
        return;
      case "watch": {
        const text = describeEvent(event) ?? "";
        if (event.result === "breach") this.persist(chalk.red("✖"), chalk.red(text));
        else if (event.result === "pass") this.persist(chalk.green("✔"), text);
        else this.persist(chalk.yellow("⚠"), chalk.yellow(text));
        return;
      }
      case "error":
      case "gate-failed":
        this.persist(chalk.red("✖"), chalk.red(describeEvent(event) ?? ""));
        return;
      case "summary": {
        this.stopSpinner();
        const [header, rule, ...rows] = summaryTable(event.rows);
        process.stderr.write(`\n${chalk.bold(header)}\n${chalk.dim(rule)}\n`);
        for (const row of rows) process.stderr.write(`${colourRow(row)}\n`);
        const line = outcomeLine(event);
        process.stderr.write(`\n${event.exitCode === 0 ? chalk.green.bold(line) : chalk.red.bold(line)}\n`);
        return;
      }
      default: {
        const text = describeEvent(event);
        if (text) this.persist(chalk.dim("·"), event.type === "begin" ? chalk.bold(text) : text);
      }
    }
  }

  print(line: string): void {
    this.withSpinnerPaused(() => process.stdout.write(`${line}\n`));
  }

  close(): void {
    this.stopSpinner();
    process.stderr.off("resize", this.onResize);
  }

  private hasWidth(): boolean {
    return terminalWidth(process.stderr) !== undefined;
  }

  private persist(symbol: string, text: string): void {
    this.withSpinnerPaused(() => process.stderr.write(`${symbol} ${text}\n`));
  }

  private withSpinnerPaused(write: () => void): void {
    if (!this.hasWidth()) this.stopSpinner();
    const spinning = this.spinner.isSpinning;
    if (spinning) this.spinner.clear();
    write();
    if (spinning) this.spinner.render();
  }

  private refresh(): void {
    if (this.active.size === 0 || !this.hasWidth()) {
      this.stopSpinner();
      return;
    }
    const now = Date.now();
    this.spinner.text = [...this.active.values()]
      .map((a) => `${a.label} ${chalk.dim(`${((now - a.since) / 1000).toFixed(1)}s`)}`)
      .join(chalk.dim("  ·  "));
    if (!this.spinner.isSpinning) this.spinner.start();
    this.ticker ??= setInterval(() => this.refresh(), 200);
  }

  private stopSpinner(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    if (this.spinner.isSpinning) this.spinner.stop();
  }
}

function colourRow(row: string): string {
  if (/\b(needs human|failed)\b/.test(row)) return chalk.red(row);
  if (/\b(rolled back|restored)\b/.test(row)) return chalk.yellow(row);
  if (/\bdeployed\b/.test(row)) return chalk.green(row);
  return row;
}
