import type { ServerConfig } from "../config/load.js";
import type { Emit, Outcome, SummaryRow } from "../events/events.js";

/** What a roll ends with. */
export interface RollResult {
  outcome: Outcome;
  rows: SummaryRow[];
  /**
   * Servers whose process changed: the process manager should persist what they run now (so a
   * reboot brings it back), which the commands do after printing the result.
   */
  touched: string[];
}

/**
 * A roll's account of each server, written by the engine and its strategy alike: its summary row,
 * and the servers on the target release in the order they got there (what rollback-all undoes).
 */
export class RollLedger {
  private readonly rows = new Map<string, SummaryRow>();
  private readonly onTarget: ServerConfig[] = [];

  constructor(
    private readonly emit: Emit,
    private readonly target: (server: string) => string,
    servers: readonly ServerConfig[],
  ) {
    for (const server of servers) this.row(server.name);
  }

  /** The server's summary row (a server the roll was not given gets one too, "not reached"). */
  row(name: string): SummaryRow {
    let row = this.rows.get(name);
    if (!row) {
      row = { server: name, result: "not reached" };
      this.rows.set(name, row);
    }
    return row;
  }

  has(name: string): boolean {
    return this.rows.has(name);
  }

  /** On the target release, gate passed (a server left to a human stays so). */
  markDeployed(servers: readonly ServerConfig[]): void {
    for (const server of servers) {
      const row = this.row(server.name);
      if (row.result === "needs human") continue;
      row.result = "deployed";
      row.release = this.target(server.name);
      this.onTarget.push(server);
    }
  }

  /** The servers on the target release now, in the order they got there. */
  deployed(): ServerConfig[] {
    return [...this.onTarget];
  }

  /** The last batch marked deployed is going back: no longer on the target. */
  undoLast(batch: readonly ServerConfig[]): void {
    this.onTarget.splice(this.onTarget.length - batch.length, batch.length);
  }

  /** Marked deployed, but it did not get there after all (the surge strategy's failed switch). */
  notDeployed(name: string): void {
    const index = this.onTarget.findIndex((s) => s.name === name);
    if (index >= 0) this.onTarget.splice(index, 1);
  }

  /** Left for a human as it is: no later step (rollback-all included) touches it again. */
  needsHuman(name: string, note: string): void {
    const index = this.onTarget.findIndex((s) => s.name === name);
    if (index >= 0) this.onTarget.splice(index, 1);
    const row = this.row(name);
    row.result = "needs human";
    row.note = note;
    this.emit({ type: "error", server: name, message: `NEEDS A HUMAN: ${note}` });
  }

  result(flags: { failure: boolean; interrupted: boolean; needsHuman?: boolean }): RollResult {
    const list = [...this.rows.values()];
    let outcome: Outcome = "success";
    if (list.some((r) => r.result === "needs human") || flags.needsHuman) outcome = "needs-human";
    else if (flags.interrupted) outcome = "interrupted";
    else if (flags.failure) outcome = "failed";
    return {
      outcome,
      rows: list,
      touched: list.filter((r) => r.result !== "not reached").map((r) => r.server),
    };
  }
}
