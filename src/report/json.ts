import type { DeployEvent } from "../events/events.js";
import type { Reporter } from "./reporter.js";

export const JSON_SCHEMA_VERSION = 1;

/** --json: one JSON object per line on stdout, each with the schema version and a timestamp. */
export class JsonReporter implements Reporter {
  emit(event: DeployEvent): void {
    process.stdout.write(
      `${JSON.stringify({ v: JSON_SCHEMA_VERSION, time: new Date().toISOString(), ...event })}\n`,
    );
  }

  print(line: string): void {
    process.stdout.write(
      `${JSON.stringify({ v: JSON_SCHEMA_VERSION, time: new Date().toISOString(), type: "output", line })}\n`,
    );
  }

  close(): void {}
}
