import { script } from "../../../remote/op.js";
import { scriptFile } from "../../../remote/script-file.js";
import type { CommandRunner } from "../../../ssh/session.js";
import type { Counts, TrafficSource } from "../../../watch/traffic.js";
import { completeLines, tallyLines } from "./access-log.js";

/** At most this much of the log is read per poll; the rest waits for the next one. */
const MAX_READ_BYTES = 8 * 1024 * 1024;

/**
 * $1 the log, $2 the identity ("device:inode") of the file read last ("" if none), $3 the offset
 * reached in it, $4 the most bytes to print. Prints "missing", or "<identity> <size> <start>":
 * the file as opened now, and where its bytes printed next start (the offset, or 0 when it is
 * another file than the last one, or shrank: it was rotated). The identity, size and bytes come
 * from one open descriptor, so a rotation in between cannot mix two files. When the file was
 * rotated and `<log>.1` (logrotate's name for it) is the file read last, what it got after the
 * offset is printed first, as "@old <bytes>" and those bytes. Bytes above 127 become "?": one byte
 * each still, so an offset counted on the text nexus decodes stays the file's (a logged request
 * may carry bytes that are not UTF-8). An unreadable log fails (exit 1, the shell's message).
 */
export const READ_LOG_SCRIPT = scriptFile(import.meta.url, "read-log.sh");

export function readFromOffset(
  path: string,
  identity: string,
  offset: number,
  maxBytes = MAX_READ_BYTES,
): string {
  return script(READ_LOG_SCRIPT, path, identity, Math.max(0, Math.floor(offset)), maxBytes);
}

export interface LogRead {
  /** "device:inode" of the log now ("" when it is missing or cannot be told). */
  identity: string;
  size: number;
  /** Where `data` starts in the log: the offset asked for, or 0 after a rotation. */
  start: number;
  data: string;
  /** What the rotated file (`<log>.1`) got after the offset, when it was found. */
  old: string;
}

/** Splits the output of READ_LOG_SCRIPT. */
export function parseRead(output: string): LogRead {
  let rest = output;
  const line = (): string => {
    const newline = rest.indexOf("\n");
    const head = newline < 0 ? rest : rest.slice(0, newline);
    rest = newline < 0 ? "" : rest.slice(newline + 1);
    return head;
  };
  const head = line();
  const read: LogRead = { identity: "", size: 0, start: 0, data: "", old: "" };
  if (head !== "missing") {
    const [identity, size, start] = head.split(" ");
    read.size = Number.parseInt(size ?? "", 10);
    read.start = Number.parseInt(start ?? "", 10);
    if (!Number.isFinite(read.size) || !Number.isFinite(read.start))
      throw new Error(`unexpected output reading the access log: ${output.slice(0, 80)}`);
    read.identity = identity === "-" ? "" : (identity ?? "");
  }
  if (rest.startsWith("@old ")) {
    const bytes = Number.parseInt(line().slice("@old ".length), 10) || 0;
    read.old = rest.slice(0, bytes);
    rest = rest.slice(bytes);
  }
  read.data = rest;
  return read;
}

/**
 * The Nginx access log on the balancer host, read incrementally: `mark` takes the identity
 * (device, inode) and size of the log, each `poll` reads what was appended since (one round trip)
 * and counts every upstream try per address. A log that is another file than the last one read,
 * or shorter than the offset, was rotated: it is read from its start, after the end of the
 * rotated file when it is still there as `<log>.1`. A missing log is one being rotated (logrotate
 * moved it, Nginx has not reopened it yet; a fresh Nginx): nothing to count yet, and the file
 * that appears is read from its start. A log nexus cannot read fails the poll: the watch window
 * decides what a source that cannot be read means.
 */
export class NginxLogSource implements TrafficSource {
  private offset = 0;
  private identity = "";

  constructor(
    private readonly runner: CommandRunner,
    private readonly path: string,
  ) {}

  async mark(): Promise<void> {
    const read = parseRead(
      await this.runner.run(readFromOffset(this.path, "", 0, 0), {
        what: `reading the size of ${this.path}`,
      }),
    );
    this.identity = read.identity;
    this.offset = read.size;
  }

  async poll(): Promise<Map<string, Counts>> {
    const read = parseRead(
      await this.runner.run(readFromOffset(this.path, this.identity, this.offset), {
        what: `reading ${this.path}`,
      }),
    );
    const old = completeLines(read.old);
    const { lines, bytes } = completeLines(read.data);
    this.identity = read.identity;
    this.offset = read.start + bytes;
    const counts = new Map<string, Counts>();
    tallyLines([...old.lines, ...lines], counts);
    return counts;
  }
}
