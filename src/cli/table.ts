import { renderTable } from "../report/format.js";
import type { Reporter } from "../report/reporter.js";

export function printTable(reporter: Reporter, header: string[], rows: string[][]): void {
  for (const line of renderTable(header, rows)) reporter.print(line);
}
