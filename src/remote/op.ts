import type { CommandRunner, ExecResult } from "../ssh/session.js";
import { cmd, shq } from "./quote.js";

/**
 * One thing done on a server, as data: the shell text to run, what to feed it, what it is for,
 * and how its result is read. Nothing here does I/O; `runOp` runs it through a session.
 */
export interface RemoteOp<T> {
  /** For error messages: "extracting the release". */
  what: string;
  command: string;
  stdin?: string;
  parse(result: ExecResult, server: string): T;
}

/**
 * A script that takes its values as positional parameters instead of having them pasted in:
 * the text that runs is the constant text that unit tests run under `sh` and ShellCheck reads.
 */
export function script(body: string, ...args: (string | number)[]): string {
  return args.length > 0 ? `sh -c ${shq(body)} nexus ${cmd(...args)}` : `sh -c ${shq(body)} nexus`;
}

/** `signal`: Ctrl-C stops the op on the server (it and what it started), and the call rejects. */
export async function runOp<T>(
  runner: CommandRunner,
  op: RemoteOp<T>,
  options: { signal?: AbortSignal } = {},
): Promise<T> {
  const result = await runner.exec(op.command, { stdin: op.stdin, what: op.what, signal: options.signal });
  return op.parse(result, runner.name);
}

/**
 * Runs ops one after the other (each once the one before has ended, whether it failed or not), in
 * one exchange where the runner can: each op's result (or its error) apart. For what must happen
 * in order on a server but need not wait for the answer in between: a history line, then the
 * release pruning, then the lock's release.
 */
export function runOps(
  runner: CommandRunner,
  ops: RemoteOp<unknown>[],
): Promise<PromiseSettledResult<unknown>[]> {
  const commands = ops.map((op) => ({ command: op.command, stdin: op.stdin, what: op.what }));
  const results = runner.execAll
    ? runner.execAll(commands)
    : commands.reduce<Promise<ExecResult>[]>((all, c) => {
        const previous = all.at(-1)?.catch(() => undefined) ?? Promise.resolve();
        all.push(previous.then(() => runner.exec(c.command, c)));
        return all;
      }, []);
  return Promise.allSettled(
    results.map(async (result, i) => (ops[i] as RemoteOp<unknown>).parse(await result, runner.name)),
  );
}
