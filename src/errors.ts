/** Exit codes, as users and scripts rely on them (README "Exit codes"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, needsHuman: 3, interrupted: 130 } as const;

/**
 * Every error a user causes or can act on: it carries its exit code, and the CLI prints its
 * message without a stack. Anything else that reaches the CLI is a bug and is shown as one.
 */
export class NexusError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A mistake in the config or the command line: exit 2. */
export class UsageError extends NexusError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}
