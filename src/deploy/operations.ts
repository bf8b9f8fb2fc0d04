import { type Config, requireSecrets } from "../config/load.js";
import type { Emit } from "../events/events.js";
import { tailLog } from "../remote/logs.js";
import { redactDeep, secretRedactor } from "../report/redact.js";
import { lineSplitter } from "../util/lines.js";
import { Fleet, type Host } from "./fleet.js";
import { runOnServer } from "./hooks.js";
import { PlanError } from "./plan.js";
import { releaseEnv } from "./release-env.js";
import { readState } from "./state.js";

export interface OperationOptions {
  emit: Emit;
  acceptNew?: boolean;
  verbose?: boolean;
  signal: AbortSignal;
}

export interface OutputLine {
  server: string;
  stream: "out" | "err";
  line: string;
}

function pick(config: Config, names: readonly string[] | undefined, flag: string): string[] {
  if (!names || names.length === 0) return config.servers.map((s) => s.name);
  const unknown = names.filter((n) => !config.servers.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new PlanError(
      `${flag}: unknown server ${unknown.map((n) => `"${n}"`).join(", ")} (servers: ${config.servers.map((s) => s.name).join(", ")})`,
    );
  }
  return config.servers.filter((s) => names.includes(s.name)).map((s) => s.name);
}

/**
 * `nexus logs`: the app's output and error logs of each server, each line handed over as it
 * arrives (secrets masked). Following, it runs until `signal` aborts.
 */
export async function streamLogs(
  config: Config,
  servers: readonly string[] | undefined,
  options: OperationOptions & { lines: number; follow: boolean; onLine(line: OutputLine): void },
): Promise<void> {
  const names = pick(config, servers, "logs");
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
  const fleet = await Fleet.open(config, names, { ...options, quiet: true });
  const redact = secretRedactor(config);
  try {
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
  } finally {
    await fleet.close();
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
 * `nexus exec`: the user's shell text run by `sh -c` in `current` on each server, with the
 * release's environment, in parallel (or one server after the other). Ctrl-C stops it everywhere.
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
  const names = pick(config, options.only, "--only");
  requireSecrets(config, "exec runs the command with the app's environment", names);
  const fleet = await Fleet.open(config, names, { ...options, quiet: true });
  const redact = secretRedactor(config);
  const runOne = async (host: Host): Promise<ExecResultOf> => {
    const server = host.server.name;
    const result: ExecResultOf = { server, code: null, lines: [] };
    try {
      const state = await readState(host);
      if (!state.current) throw new Error("no current release (deploy first)");
      result.code = await runOnServer(host, {
        cwd: host.layout.current,
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
  try {
    const hosts = names.map((n) => fleet.host(n));
    if (!options.serial) return await Promise.all(hosts.map(runOne));
    const results: ExecResultOf[] = [];
    for (const host of hosts) {
      if (options.signal.aborted) break;
      results.push(await runOne(host));
    }
    return results;
  } finally {
    await fleet.close();
  }
}

/** `nexus config`: the config as nexus resolved it, with every secret masked. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const redact = secretRedactor(config);
  const servers = config.servers.map(
    ({ explicit: _explicit, secretKeys, envSources, missingSecrets, env, ...rest }) => ({
      ...rest,
      env: Object.fromEntries([
        ...Object.entries(env).map(([key, value]) => {
          const source = envSources?.[key];
          if (source || secretKeys?.includes(key)) return [key, `*** (from $${source ?? "?"})`];
          return [key, redact(value)];
        }),
        // Not an error here: only the commands that write the app's environment need them.
        ...(missingSecrets ?? []).map((m) => [
          m.key,
          `(from $${m.variable}: ${m.empty ? "empty" : "not set"} here)`,
        ]),
      ]),
    }),
  );
  // String by string: masking the JSON text turned a number equal to a secret into bare ***.
  return redactDeep({ ...config, servers }, redact) as Record<string, unknown>;
}
