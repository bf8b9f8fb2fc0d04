import type { DeployEvent } from "../events/events.js";

export interface Reporter {
  emit(event: DeployEvent): void;
  /** Prints a line that is not an event (status tables, command output). */
  print(line: string): void;
  close(): void;
}
