import { spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import { stdoutOrThrow } from "./errors.js";
import type { ExecOptions, ExecResult, InteractiveRunner, RunningCommand } from "./session.js";

/** Runs commands on this machine through sh, for a balancer that runs where nexus runs. */
export class LocalRunner implements InteractiveRunner {
  readonly name = "local";

  constructor(private readonly onCommand?: (server: string, command: string) => void) {}

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const running = this.start(command);
    running.end(options.stdin);
    return running.result;
  }

  async run(command: string, options: ExecOptions = {}): Promise<string> {
    return stdoutOrThrow(this.name, options.what, await this.exec(command, options));
  }

  /** As an SSH session's `start`: stdin stays open until `end`; output byte for byte. */
  start(command: string, onStdout?: (text: string) => void): RunningCommand {
    this.onCommand?.(this.name, command);
    const child = spawn("sh", ["-c", command], { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const decoder = new StringDecoder("utf8");
    child.stdout.on("data", (chunk: Buffer) => {
      if (onStdout) onStdout(decoder.write(chunk));
      else stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // EPIPE when the command ended before reading all of its input: its exit status says why.
    child.stdin.on("error", () => {});
    const result = new Promise<ExecResult>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) =>
        resolve({
          code,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
        }),
      );
    });
    return {
      send: (text) => {
        child.stdin.write(text);
      },
      end: (text) => {
        child.stdin.end(text);
      },
      result,
    };
  }
}
