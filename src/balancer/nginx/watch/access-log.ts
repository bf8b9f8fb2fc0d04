import type { Counts } from "../../../watch/traffic.js";

/** One upstream try of a request, as Nginx logged it. */
export interface UpstreamTry {
  address: string;
  /** HTTP status of this try; undefined when Nginx logged "-" (no answer was read). */
  status?: number;
  /** `$upstream_response_time` of this try in ms (Nginx logs seconds with ms resolution); undefined for "-". */
  ms?: number;
}

export interface AccessLine {
  tries: UpstreamTry[];
}

/**
 * The tail of a `nexus` line: " upstream=… upstream_status=… upstream_time=…", at the end. Its
 * values are Nginx's, not a client's: addresses (no space, quote, comma or "="), statuses and
 * times, each list joined by ", " (next try) and " : " (internal redirect to another upstream
 * group).
 */
const TAIL =
  /^ upstream=([^\s",=]+(?:(?:, | : )[^\s",=]+)*) upstream_status=([\d\-, :]*) upstream_time=([\d.\-, :]*)$/;
const TAIL_START = " upstream=";

function splitValues(value: string): string[] {
  return value.split(/, | : /).map((v) => v.trim());
}

/**
 * Parses one access-log line in the nexus format; undefined when the line is in another format.
 *
 * The tail is read from the last " upstream=" of the line, never from the first: a format may log
 * client-controlled fields unquoted before it (`$http_x_forwarded_for`), and a client that writes
 * "x upstream=10.0.0.2:3000 :" there must not make its text part of the tail (read from the left,
 * that hid the real try's 500 and blamed a server of the client's choice). No text of the real
 * tail can hold " upstream=" (its values hold no "="), so the last one is Nginx's.
 */
export function parseAccessLine(line: string): AccessLine | undefined {
  const text = line.trimEnd();
  const at = text.lastIndexOf(TAIL_START);
  if (at < 0) return undefined;
  const match = TAIL.exec(text.slice(at));
  if (!match) return undefined;
  const addresses = splitValues(match[1] as string);
  const statuses = splitValues(match[2] as string);
  const times = splitValues(match[3] as string);
  const tries: UpstreamTry[] = [];
  addresses.forEach((address, i) => {
    // "-": served without an upstream (a local location, a cached answer).
    if (address === "-" || address === "") return;
    const status = Number.parseInt(statuses[i] ?? "", 10);
    const seconds = Number.parseFloat(times[i] ?? "");
    tries.push({
      address,
      status: Number.isFinite(status) ? status : undefined,
      ms: Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined,
    });
  });
  return { tries };
}

/**
 * A try failed when the server answered 5xx, or when Nginx could not connect, read or got no
 * answer in time (it logs 502 or 504 for that try). A try with no status ("-") is one the client
 * gave up on: not the server's failure. Every try counts against the server that took it, so a
 * first try that failed on A and was passed on to B is A's failure even if the client got a 200.
 */
export function tryFailed(attempt: UpstreamTry): boolean {
  return attempt.status !== undefined && attempt.status >= 500;
}

/** Adds the tries of some lines to per-address counts. Returns how many lines were not in the format. */
export function tallyLines(lines: Iterable<string>, into: Map<string, Counts>): number {
  let foreign = 0;
  for (const line of lines) {
    if (line.trim() === "") continue;
    const parsed = parseAccessLine(line);
    if (!parsed) {
      foreign++;
      continue;
    }
    for (const attempt of parsed.tries) {
      const counts = into.get(attempt.address) ?? { requests: 0, failures: 0, latencies: [] };
      counts.requests++;
      if (tryFailed(attempt)) counts.failures++;
      // The latency judged is that of answers: a refused connection's 0 ms is an error, not speed.
      else if (attempt.status !== undefined && attempt.ms !== undefined) counts.latencies?.push(attempt.ms);
      into.set(attempt.address, counts);
    }
  }
  return foreign;
}

/**
 * Splits a chunk read from the log at the last newline: the complete lines, and how many bytes
 * they take (a line still being written waits for the next read).
 */
export function completeLines(chunk: string): { lines: string[]; bytes: number } {
  const end = chunk.lastIndexOf("\n");
  if (end < 0) return { lines: [], bytes: 0 };
  const whole = chunk.slice(0, end + 1);
  return { lines: whole.split("\n").slice(0, -1), bytes: Buffer.byteLength(whole) };
}
