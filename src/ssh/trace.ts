import { appendFileSync } from "node:fs";

/**
 * What one SSH operation cost, for `NEXUS_SSH_TRACE=<file>`: one JSON line per operation, so a
 * bench (or an engineer chasing a slow deploy) can count what a command opened on each server and
 * which step paid for it. Off unless the variable names a file.
 */
export interface TraceEntry {
  server: string;
  /**
   * connect: a handshake; channel: an exec channel (one login-shell start on the server);
   * shell: one exchange with the server's remote shell; sftp: one SFTP request (an upload's writes
   * count as one); forward: a forwarded connection (health probes through the SSH connection:
   * a gate's probes share one, kept alive; each attempt while nothing listens is one, failed).
   */
  kind: "connect" | "channel" | "shell" | "sftp" | "forward";
  /** The step ("reading the server's state", "upload"), or the command's first words. */
  what: string;
  /** When it began (ms since the epoch) and how long it took until its answer. */
  at: number;
  ms: number;
  /** An operation that failed at once (a forwarded connection the server could not open: ECONNREFUSED). */
  error?: string;
}

export type Tracer = (entry: TraceEntry) => void;

let cached: Tracer | null | undefined;

/** The tracer `NEXUS_SSH_TRACE` asks for, or undefined. */
export function tracer(env: NodeJS.ProcessEnv = process.env): Tracer | undefined {
  if (cached !== undefined && env === process.env) return cached ?? undefined;
  const file = env.NEXUS_SSH_TRACE;
  const made: Tracer | null = file
    ? (entry) => {
        try {
          appendFileSync(file, `${JSON.stringify(entry)}\n`);
        } catch {
          // A trace that cannot be written never fails the command.
        }
      }
    : null;
  if (env === process.env) cached = made;
  return made ?? undefined;
}

/** A name for a command in the trace: its step when known, else its first words. */
export function traceName(command: string, what?: string): string {
  if (what) return what;
  const text = command.trim();
  const script = /^sh -c '([^\n']{0,60})/.exec(text);
  return (script ? `sh -c ${script[1]}` : (text.split("\n")[0] ?? "")).slice(0, 60);
}

/** Starts timing an operation; the returned function records it once it ends (with why it failed, if it did). */
export function traceStart(
  trace: Tracer | undefined,
  server: string,
  kind: TraceEntry["kind"],
  what: string,
): (error?: string) => void {
  if (!trace) return () => {};
  const at = Date.now();
  return (error) => trace({ server, kind, what, at, ms: Date.now() - at, ...(error ? { error } : {}) });
}
