import { NexusError } from "../errors.js";

/** One clear error per host: what failed, on which server, and what to do. */
export class SshError extends NexusError {
  constructor(
    readonly server: string,
    readonly kind: "refused" | "timeout" | "auth" | "host-key" | "network" | "closed",
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

export class RemoteCommandError extends NexusError {
  constructor(
    readonly server: string,
    readonly what: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    const detail = stderr.trim().split("\n").slice(-8).join("\n");
    super(`${server}: ${what} failed (exit ${code ?? "signal"})${detail ? `:\n${detail}` : ""}`);
  }
}

/** The stdout of a command that must succeed; a non-zero exit becomes a RemoteCommandError. */
export function stdoutOrThrow(
  server: string,
  what: string | undefined,
  result: { code: number | null; stdout: string; stderr: string },
): string {
  if (result.code !== 0) {
    throw new RemoteCommandError(server, what ?? "command", result.code, result.stderr || result.stdout);
  }
  return result.stdout;
}
