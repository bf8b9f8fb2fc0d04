import { stdoutOrThrow } from "./errors.js";
import type { CommandRunner, ExecOptions, ExecResult } from "./session.js";

/** Runs commands on this machine through sh, for a balancer that runs where nexus runs. */
export class LocalRunner implements CommandRunner {
  readonly name = "local";

  constructor(private readonly onCommand?: (server: string, command: string) => void) {}

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.onCommand?.(this.name, command);
    const { execa } = await import("execa");
    // Output byte for byte, like an SSH session: the balancer hashes what it read.
    const result = await execa("sh", ["-c", command], {
      input: options.stdin ?? "",
      reject: false,
      stripFinalNewline: false,
    });
    return { code: result.exitCode ?? null, stdout: result.stdout, stderr: result.stderr };
  }

  async run(command: string, options: ExecOptions = {}): Promise<string> {
    return stdoutOrThrow(this.name, options.what, await this.exec(command, options));
  }
}
