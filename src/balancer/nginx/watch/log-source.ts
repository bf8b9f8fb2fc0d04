import { script } from "../../../remote/op.js";
import { scriptFile } from "../../../remote/script-file.js";
import type { CommandRunner } from "../../../ssh/session.js";
import type { Counts, TrafficSource } from "../../../watch/traffic.js";
import { completeLines, tallyLines } from "./access-log.js";

/** At most this much of the log is read per poll; the rest waits for the next one. */
const MAX_READ_BYTES = 8 * 1024 * 1024;

/**
 * $1 the log, $2 an offset, $3 the most bytes to print. Prints the log's size, then its bytes from
 * the offset on (from 0 when the file shrank: it was rotated). A log missing for a moment (moved
 * by logrotate, not yet created again) is size 0.
 */
export const READ_LOG_SCRIPT = scriptFile(import.meta.url, "read-log.sh");

/** $1 the log: prints its size. */
export const LOG_SIZE_SCRIPT = scriptFile(import.meta.url, "log-size.sh");

export function readFromOffset(path: string, offset: number, maxBytes = MAX_READ_BYTES): string {
  return script(READ_LOG_SCRIPT, path, Math.max(0, Math.floor(offset)), maxBytes);
}

/** Splits the output of readFromOffset: the size line, then the data. */
export function parseRead(output: string): { size: number; data: string } {
  const newline = output.indexOf("\n");
  const size = Number.parseInt(newline < 0 ? output : output.slice(0, newline), 10);
  if (!Number.isFinite(size))
    throw new Error(`unexpected output reading the access log: ${output.slice(0, 80)}`);
  return { size, data: newline < 0 ? "" : output.slice(newline + 1) };
}

/**
 * The Nginx access log on the balancer host, read incrementally: `mark` takes the byte offset of
 * its end, each `poll` reads what was appended since (one round trip) and counts every upstream
 * try per address. A log rotated meanwhile (smaller than the offset) is read from its start.
 */
export class NginxLogSource implements TrafficSource {
  private offset = 0;

  constructor(
    private readonly runner: CommandRunner,
    private readonly path: string,
  ) {}

  async mark(): Promise<void> {
    const out = await this.runner.run(script(LOG_SIZE_SCRIPT, this.path), {
      what: `reading the size of ${this.path}`,
    });
    this.offset = Number.parseInt(out.trim(), 10) || 0;
  }

  async poll(): Promise<Map<string, Counts>> {
    const { size, data } = parseRead(
      await this.runner.run(readFromOffset(this.path, this.offset), { what: `reading ${this.path}` }),
    );
    if (size < this.offset) this.offset = 0;
    const { lines, bytes } = completeLines(data);
    this.offset += bytes;
    const counts = new Map<string, Counts>();
    tallyLines(lines, counts);
    return counts;
  }
}
