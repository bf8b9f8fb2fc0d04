import { stdoutOrThrow } from "../../ssh/errors.js";
import type { ExecResult, InteractiveRunner } from "../../ssh/session.js";
import type { PreparedRestart } from "../process-manager.js";
import { parseList, parseRestart, parseSaved } from "./restart-script.js";

/**
 * The client side of RESTART_SCRIPT started with "wait": one request line, one JSON reply line,
 * in order. When the program ends, every request still waiting fails with its error output.
 */
export function preparedRestart(
  runner: InteractiveRunner,
  command: string,
  release: string,
  what: string,
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
  void running.result
    .then(failure, (error: Error) => error)
    .then((error) => {
      ended = error;
      for (const request of waiting.splice(0)) request.reject(error);
    });
  const request = (line: string) =>
    new Promise<string>((resolve, reject) => {
      if (ended) return reject(ended);
      waiting.push({ resolve, reject });
      running.send(`${line}\n`);
    });
  return {
    release,
    go: async () => parseRestart(await request("go")),
    inspect: async () => parseList(await request("list")),
    persist: async () => parseSaved(await request("save")),
    close() {
      if (closed) return;
      closed = true;
      running.end();
    },
  };
}
