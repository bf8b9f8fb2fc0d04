import { Command } from "commander";
import { action, type EventsContext, type SetExit } from "../cli/action.js";
import { onInterrupt, readConfig } from "../cli/context.js";
import { examples, list } from "../cli/options.js";
import { printResult } from "../cli/result.js";
import { type Config, requireSecrets } from "../config/load.js";
import { type Host, withFleet } from "../deploy/fleet.js";
import { runOnServer } from "../deploy/hooks.js";
import { PlanError } from "../deploy/plan.js";
import { releaseEnv } from "../deploy/release-env.js";
import { readState } from "../deploy/state.js";
import { EXIT } from "../errors.js";
import { secretRedactor } from "../report/redact.js";
import type { OperationOptions, OutputLine } from "./logs.js";
import { serversNamed } from "./servers.js";

interface ExecFlags {
  only?: string[];
  serial?: boolean;
}

/** `nexus exec -- CMD`: a shell command in the current release of each server, output grouped per server. */
export function execCommand(setExit: SetExit): Command {
  return new Command("exec")
    .description("run a shell command in the current release on each server; output grouped per server")
    .argument("<command...>", "the shell text, after -- (run by sh -c in current, with the app's env)")
    .option("--only <servers>", "only these servers (comma-separated names)", list)
    .option("--serial", "one server after the other (default: all at once)")
    .addHelpText(
      "after",
      examples(
        "nexus exec -- node -v",
        "nexus exec --only nexus-beta -- 'ls -l uploads | wc -l'",
        "nexus exec --serial -- npm run cache:clear",
      ),
    )
    .action(
      action(setExit, (context, words: string[], flags: ExecFlags) => execAndPrint(context, words, flags)),
    );
}

/**
 * Runs the command and prints its output: in parallel, a server's lines together once it is done;
 * serial, as they come; with --json, one result line.
 */
async function execAndPrint({ reporter, global }: EventsContext, words: string[], flags: ExecFlags) {
  const config = readConfig(global);
  const stop = onInterrupt();
  const finished: ExecResultOf[] = [];
  const say = (line: OutputLine) => reporter.print(line.stream === "err" ? `! ${line.line}` : line.line);
  const printGroup = (result: ExecResultOf, withLines: boolean) => {
    finished.push(result);
    if (global.json) return;
    const status = result.error ?? (result.code === 0 ? "ok" : `exit ${result.code ?? "signal"}`);
    if (!flags.serial) reporter.print(`── ${result.server} (${status})`);
    if (withLines) for (const line of result.lines) say(line);
    if (flags.serial) reporter.print(`── ${result.server}: ${status}`);
  };
  try {
    const results = await execOnFleet(config, words.join(" "), {
      emit: (e) => reporter.emit(e),
      acceptNew: global.acceptNew,
      verbose: global.verbose,
      signal: stop.signal,
      only: flags.only,
      serial: flags.serial,
      onLine: (line) => {
        if (!global.json && flags.serial) say(line);
      },
      onDone: (result) => printGroup(result, !flags.serial && !global.json),
    });
    if (global.json) {
      printResult({
        command: "exec",
        servers: finished.map((r) => ({
          server: r.server,
          exitCode: r.code,
          ...(r.error ? { error: r.error } : {}),
          lines: r.lines.map(({ stream, line }) => ({ stream, line })),
        })),
      });
    }
    if (stop.signal.aborted) return EXIT.interrupted;
    return results.every((r) => r.code === 0 && !r.error) ? EXIT.ok : EXIT.failed;
  } finally {
    stop.dispose();
  }
}

export interface ExecResultOf {
  server: string;
  /** The command's exit code; null when it was stopped or the server could not run it. */
  code: number | null;
  lines: OutputLine[];
  error?: string;
}

/**
 * The user's shell text run by `sh -c` in `current` (its app.workspace directory) on each server, with the release's
 * environment, in parallel (or one server after the other). Ctrl-C stops it everywhere.
 */
export async function execOnFleet(
  config: Config,
  command: string,
  options: OperationOptions & {
    only?: string[];
    serial?: boolean;
    /** Each line as it arrives (serial: to print it at once). */
    onLine?(line: OutputLine): void;
    /** Each server once it is done (parallel: to print its group). */
    onDone?(result: ExecResultOf): void;
  },
): Promise<ExecResultOf[]> {
  if (command.trim() === "") throw new PlanError("exec: no command given (nexus exec -- CMD)");
  const names = serversNamed(config, options.only, "--only");
  requireSecrets(config, "exec runs the command with the app's environment", names);
  const redact = secretRedactor(config);
  const runOne = async (host: Host): Promise<ExecResultOf> => {
    const server = host.server.name;
    const result: ExecResultOf = { server, code: null, lines: [] };
    try {
      const state = await readState(host);
      if (!state.current) throw new Error("no current release (deploy first)");
      result.code = await runOnServer(host, {
        // A workspace package's directory (app.workspace), where its process runs.
        cwd: config.app.workspace ? `${host.layout.current}/${config.app.workspace}` : host.layout.current,
        command,
        env: releaseEnv(config, host.server, state.current),
        timeoutMs: 0,
        signal: options.signal,
        onLine: (text, stream) => {
          const line = { server, stream, line: redact(text) };
          result.lines.push(line);
          options.onLine?.(line);
        },
      });
    } catch (error) {
      result.error = redact((error as Error).message);
    }
    options.onDone?.(result);
    return result;
  };
  return withFleet(config, names, { ...options, quiet: true }, async (fleet) => {
    const hosts = names.map((n) => fleet.host(n));
    if (!options.serial) return Promise.all(hosts.map(runOne));
    const results: ExecResultOf[] = [];
    for (const host of hosts) {
      if (options.signal.aborted) break;
      results.push(await runOne(host));
    }
    return results;
  });
}
