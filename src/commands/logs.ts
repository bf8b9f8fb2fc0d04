import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { onInterrupt, readConfig } from "../cli/context.js";
import { examples, lineCount } from "../cli/options.js";
import type { Config } from "../config/load.js";
import { withFleet } from "../deploy/fleet.js";
import { EXIT } from "../errors.js";
import type { Emit } from "../events/events.js";
import { tailLog } from "../remote/logs.js";
import { secretRedactor } from "../report/redact.js";
import { lineSplitter } from "../util/lines.js";
import { serversNamed } from "./servers.js";

/** What `nexus logs` and `nexus exec` take from the command line. */
export interface OperationOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  signal: AbortSignal;
}

/** One line a server printed: the app's log, or a command's output. */
export interface OutputLine {
  server: string;
  stream: "out" | "err";
  line: string;
}

/** `nexus logs [servers...]`: the app's logs from every server, each line prefixed with its server. */
export function logsCommand(setExit: SetExit): Command {
  return new Command("logs")
    .argument("[servers...]")
    .description("the app's logs from every server (or those named), each line prefixed with its server")
    .option("-n, --lines <n>", "lines of each log to show first", lineCount, 20)
    .option("-f, --follow", "keep printing new lines as they arrive, until Ctrl-C")
    .addHelpText("after", examples("nexus logs -n 50", "nexus logs nexus-beta -f"))
    .action(
      action(
        setExit,
        async ({ reporter, global }, servers: string[], flags: { lines: number; follow?: boolean }) => {
          const config = readConfig(global);
          const width = Math.max(...config.servers.map((s) => s.name.length));
          const stop = onInterrupt();
          try {
            await streamLogs(config, servers, {
              emit: (e) => reporter.emit(e),
              acceptNew: global.acceptNew,
              verbose: global.verbose,
              signal: stop.signal,
              lines: flags.lines,
              follow: !!flags.follow,
              onLine: (line) =>
                global.json
                  ? reporter.emit({ type: "log", ...line })
                  : reporter.print(formatLine(line, width)),
            });
          } finally {
            stop.dispose();
          }
          return EXIT.ok;
        },
      ),
    );
}

function formatLine(line: OutputLine, width: number): string {
  return `${line.server.padEnd(width)} ${line.stream === "err" ? "!" : "|"} ${line.line}`;
}

/**
 * The app's output and error logs of each server, each line handed over as it arrives (secrets
 * masked). Following, it runs until `signal` aborts.
 */
export async function streamLogs(
  config: Config,
  servers: readonly string[] | undefined,
  options: OperationOptions & { lines: number; follow: boolean; onLine(line: OutputLine): void },
): Promise<void> {
  const names = serversNamed(config, servers, "logs");
  // Logs need no secret, but a value nexus does not know cannot be masked: said, not refused.
  const unknown = [
    ...new Set(
      config.servers
        .filter((s) => names.includes(s.name))
        .flatMap((s) => (s.missingSecrets ?? []).map((m) => `$${m.variable}`)),
    ),
  ];
  if (unknown.length > 0)
    options.emit({
      type: "warn",
      message: `${unknown.join(", ")} not set here: the value(s) read from them (fromEnv) cannot be masked in these logs`,
    });
  const redact = secretRedactor(config);
  await withFleet(config, names, { ...options, quiet: true }, async (fleet) => {
    await Promise.all(
      names.flatMap((name) => {
        const host = fleet.host(name);
        const files = fleet.processes.logFiles(host.layout);
        return (["out", "err"] as const).map(async (stream) => {
          const split = lineSplitter((line) => options.onLine({ server: name, stream, line: redact(line) }));
          const op = tailLog(stream === "out" ? files.out : files.error, options.lines, options.follow);
          await host.session.stream(op.command, {
            signal: options.signal,
            onStdout: (chunk) => split.push(chunk),
            onStderr: () => {},
          });
          split.flush();
        });
      }),
    );
  });
}
