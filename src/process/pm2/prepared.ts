import { stdoutOrThrow } from "../../ssh/errors.js";
import type { ExecResult, InteractiveRunner } from "../../ssh/session.js";
import type { PreparedRestart } from "../process-manager.js";
import { parseList, parseRestart, parseSaved, parseStopped } from "./restart-script.js";

/** A "list" or "save" unanswered this long ends the program (replies would come out of order). */
const ANSWER_TIMEOUT_MS = 10_000;

/**
 * The client side of RESTART_SCRIPT started with "wait": one request line, one JSON reply line,
 * in order. When the program ends, every request still waiting fails with its error output.
 */
export function preparedRestart(
  runner: InteractiveRunner,
  command: string,
  release: string,
  what: string,
  /** "stop": the process name for a port, and how long a stop may take (each instance's kill timeout). */
  stopping: { name(port?: number): string; timeoutMs: number },
): PreparedRestart {
  const waiting: { resolve(line: string): void; reject(error: Error): void }[] = [];
  let buffered = "";
  let ended: Error | undefined;
  let closed = false;
  const running = runner.start(command, (text) => {
    const lines = (buffered + text).split("\n");
    buffered = lines.pop() ?? "";
    // Anything else PM2 might print is not a reply.
    for (const line of lines.filter((l) => l.startsWith("{"))) waiting.shift()?.resolve(line);
  });
  const failure = (result: ExecResult): Error => {
    try {
      stdoutOrThrow(runner.name, what, result);
    } catch (error) {
      return error as Error;
    }
    return new Error(`${runner.name}: ${what}: PM2 printed no result`);
  };
  const end = (error: Error) => {
    ended ??= error;
    for (const request of waiting.splice(0)) request.reject(error);
  };
  void running.result.then(failure, (error: Error) => error).then(end);
  const request = (line: string, timeoutMs?: number) =>
    new Promise<string>((resolve, reject) => {
      if (ended) return reject(ended);
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              end(
                new Error(
                  `${runner.name}: ${what}: PM2 did not answer "${line}" within ${timeoutMs / 1000}s`,
                ),
              );
              close();
            }, timeoutMs);
      waiting.push({
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      running.send(`${line}\n`);
    });
  const close = () => {
    if (closed) return;
    closed = true;
    running.end();
  };
  return {
    release,
    get alive() {
      return !ended && !closed;
    },
    go: async () => parseRestart(await request("go")),
    inspect: async () => parseList(await request("list", ANSWER_TIMEOUT_MS)),
    persist: async () => parseSaved(await request("save", ANSWER_TIMEOUT_MS)),
    stop: async (port) => parseStopped(await request(`stop ${stopping.name(port)}`, stopping.timeoutMs)),
    close,
  };
}
