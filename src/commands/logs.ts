import { type Command, InvalidArgumentError, Option } from "commander";
import {
  exitCodeForError,
  type GlobalOptions,
  onInterrupt,
  readConfig,
  whileInterruptible,
  withReporter,
} from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { restart } from "../deploy/restart.js";
import { EXIT } from "../errors.js";
import { type ExecResultOf, execOnFleet, maskedConfig, type OutputLine, streamLogs } from "./exec.js";

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function count(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a number of lines.");
  return Number(value);
}

function formatLine(line: OutputLine, width: number): string {
  return `${line.server.padEnd(width)} ${line.stream === "err" ? "!" : "|"} ${line.line}`;
}

/** logs, exec, restart, config: looking after the app on its servers between deploys. */
export function addOperationCommands(program: Command, setExit: (code: number) => void): void {
  program
    .command("logs [servers...]")
    .description("the app's logs from every server (or those named), each line prefixed with its server")
    .option("-n, --lines <n>", "lines of each log to show first", count, 20)
    .option("-f, --follow", "keep printing new lines as they arrive, until Ctrl-C")
    .addHelpText("after", "\nExamples:\n  nexus logs -n 50\n  nexus logs nexus-beta -f")
    .action(async (servers: string[], opts: { lines: number; follow?: boolean }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const config = readConfig(global);
          const width = Math.max(...config.servers.map((s) => s.name.length));
          const stop = onInterrupt();
          try {
            await streamLogs(config, servers, {
              emit: (e) => reporter.emit(e),
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              signal: stop.signal,
              lines: opts.lines,
              follow: !!opts.follow,
              onLine: (line) =>
                global.json
                  ? reporter.emit({ type: "log", ...line })
                  : reporter.print(formatLine(line, width)),
            });
          } finally {
            stop.dispose();
          }
          return EXIT.ok;
        }),
      );
    });

  program
    .command("exec")
    .description("run a shell command in the current release on each server; output grouped per server")
    .argument("<command...>", "the shell text, after -- (run by sh -c in current, with the app's env)")
    .option("--only <servers>", "only these servers (comma-separated names)", list)
    .option("--serial", "one server after the other (default: all at once)")
    .addHelpText(
      "after",
      "\nExamples:\n  nexus exec -- node -v\n  nexus exec --only nexus-beta -- 'ls -l uploads | wc -l'\n  nexus exec --serial -- npm run cache:clear",
    )
    .action(async (words: string[], opts: { only?: string[]; serial?: boolean }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const config = readConfig(global);
          const stop = onInterrupt();
          const finished: ExecResultOf[] = [];
          const printGroup = (result: ExecResultOf, withLines: boolean) => {
            finished.push(result);
            if (global.json) return;
            const status = result.error ?? (result.code === 0 ? "ok" : `exit ${result.code ?? "signal"}`);
            if (!opts.serial) reporter.print(`── ${result.server} (${status})`);
            if (withLines)
              for (const l of result.lines) reporter.print(l.stream === "err" ? `! ${l.line}` : l.line);
            if (opts.serial) reporter.print(`── ${result.server}: ${status}`);
          };
          try {
            const results = await execOnFleet(config, words.join(" "), {
              emit: (e) => reporter.emit(e),
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              signal: stop.signal,
              only: opts.only,
              serial: opts.serial,
              onLine: (line) => {
                if (!global.json && opts.serial)
                  reporter.print(line.stream === "err" ? `! ${line.line}` : line.line);
              },
              // Parallel: a server's lines are printed together once it is done; serial: as they come.
              onDone: (result) => printGroup(result, !opts.serial && !global.json),
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
        }),
      );
    });

  program
    .command("restart")
    .description(
      "restart the current release on every server with the same drain and gate, nothing transferred",
    )
    .option("--rolling", "server by server behind the balancer (the default and only mode)")
    .option("--only <servers>", "restart only these servers", list)
    .addHelpText("after", "\nExamples:\n  nexus restart --rolling\n  nexus restart --only nexus-beta")
    .action(async (opts: { only?: string[] }) => {
      setExit(
        await withReporter(program, async (reporter, global) => {
          const config = readConfig(global);
          return whileInterruptible(reporter, async (signal, inHand) => {
            const result = await restart(config, {
              emit: (e) => reporter.emit(e),
              signal,
              only: opts.only,
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              inHand,
            });
            return result.exitCode;
          });
        }),
      );
    });

  program
    .command("config")
    .description("print the config as nexus resolved it (defaults filled, fromEnv read), secrets masked")
    .addHelpText("after", "\nExamples:\n  nexus config\n  nexus --json config")
    .addOption(new Option("--json", "one line of JSON (same as the global --json)").hideHelp())
    .action((opts: { json?: boolean }) => {
      const global = program.opts<GlobalOptions>();
      try {
        const masked = maskedConfig(readConfig(global));
        if (global.json || opts.json) printResult({ command: "config", config: masked });
        else process.stdout.write(`${JSON.stringify(masked, null, 2)}\n`);
        setExit(EXIT.ok);
      } catch (error) {
        const { code, message } = exitCodeForError(error);
        process.stderr.write(`nexus: ${message}\n`);
        setExit(code);
      }
    });
}
