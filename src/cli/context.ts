import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import chalk from "chalk";
import { ConfigError, where } from "../config/errors.js";
import { nexusCommand, rememberInvocation } from "../config/invocation.js";
import { type Config, configLayers, DEFAULT_CONFIG_FILE, loadConfig } from "../config/load.js";
import { locateConfigError, type ParsedLayer } from "../config/positions.js";
import { EXIT, NexusError, UsageError } from "../errors.js";
import type { DeployEvent } from "../events/events.js";
import { notifyFrom } from "../notify/notifier.js";
import { GithubReporter } from "../report/github.js";
import { JsonReporter } from "../report/json.js";
import { maskSecretsOf } from "../report/masking.js";
import { PlainReporter } from "../report/plain.js";
import type { Reporter } from "../report/reporter.js";
import { wantsInteractiveOutput } from "../report/terminal.js";

export interface GlobalOptions {
  config?: string;
  /** -d / NEXUS_DESTINATION: deploy.<name>.json read on top of the config. */
  destination?: string;
  json?: boolean;
  plain?: boolean;
  verbose?: boolean;
  acceptNew?: boolean;
  /** --ssh-key / --known-hosts: override ssh.privateKey / ssh.knownHosts (paths relative to the cwd). */
  sshKey?: string;
  knownHosts?: string;
}

export async function pickReporter(options: GlobalOptions): Promise<Reporter> {
  if (options.json) return new JsonReporter();
  if (process.env.GITHUB_ACTIONS === "true") return new GithubReporter();
  const interactive = wantsInteractiveOutput(process.stderr, process.env, options.plain);
  // chalk (and ora, which colours through it) reads --no-color but not NO_COLOR (no-color.org).
  if (process.env.NO_COLOR) chalk.level = 0;
  if (!interactive) return new PlainReporter();
  // Only a terminal gets spinners: ora is loaded then, not at every start-up.
  const { PrettyReporter } = await import("../report/pretty.js");
  return new PrettyReporter();
}

/** A bad flag value found after parsing: exit 2, like commander's own usage errors. */

export function readConfig(options: GlobalOptions): Config {
  // NEXUS_DESTINATION="" is no destination (a CI variable left empty), as no -d is.
  const config = loadConfig(options.config ?? DEFAULT_CONFIG_FILE, process.env, {
    destination: options.destination || undefined,
  });
  loadedLayers = configLayers(config);
  if (options.sshKey) {
    const key = path.resolve(options.sshKey);
    if (!statSync(key, { throwIfNoEntry: false })?.isFile())
      throw new UsageError(`--ssh-key: ${options.sshKey}: no such file (expected a private key file)`);
    config.ssh.privateKey = key;
  }
  if (options.knownHosts) config.ssh.knownHosts = path.resolve(options.knownHosts);
  maskSecretsOf(config);
  rememberInvocation({
    file: config.file,
    destination: config.destination,
    sshKey: options.sshKey,
    knownHosts: options.knownHosts,
  });
  notifyFrom(config.notify, config.app.name);
  return config;
}

const readConfigText = (file: string) => readFileSync(path.resolve(file), "utf8");

/** The files the command's config was read from: an error found later is placed in the right one. */
let loadedLayers: ParsedLayer[] = [];

/**
 * The error events for an error: a config error gives one per problem, each with its place in the
 * file (the GitHub reporter turns them into annotations on that line).
 */
export function errorEvents(error: unknown): Extract<DeployEvent, { type: "error" }>[] {
  if (error instanceof ConfigError) {
    const located = locateConfigError(error, readConfigText, loadedLayers);
    return located.problems.map((problem, i) => {
      const at = located.locations[i];
      return {
        type: "error",
        message: `${where(located.file, at)}: ${problem}`,
        // A place only where there is a line to point at (not for a file that is missing).
        ...(at ? { file: at.file ?? located.file, line: at.line, column: at.column } : {}),
      };
    });
  }
  return [{ type: "error", message: exitCodeForError(error).message }];
}

/** Errors users cause or can fix get one clear message and their exit code; anything else is a bug. */
export function exitCodeForError(error: unknown): { code: number; message: string } {
  if (error instanceof ConfigError) {
    return { code: error.exitCode, message: locateConfigError(error, readConfigText, loadedLayers).message };
  }
  if (error instanceof NexusError) return { code: error.exitCode, message: error.message };
  const err = error as Error;
  return { code: EXIT.failed, message: `unexpected error: ${err?.stack ?? String(error)}` };
}

export interface Interrupt {
  signal: AbortSignal;
  /** Stops listening for Ctrl-C and SIGTERM. */
  dispose(): void;
}

/**
 * Ctrl-C or SIGTERM aborts the returned signal, after `first` has had its say; any later one goes
 * to `again` (without it, it does nothing more).
 */
export function onInterrupt(
  handlers: { first?: (name: NodeJS.Signals) => void; again?: (name: NodeJS.Signals) => void } = {},
): Interrupt {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      handlers.again?.(name);
      return;
    }
    handlers.first?.(name);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/**
 * Runs a command that changes the fleet with Ctrl-C/SIGTERM handling: the first asks it to stop
 * at the next safe point (the server in hand is finished or restored first); a second one says
 * what is still in flight and quits. `inHand` is kept up to date by the command with the servers
 * out of rotation, which a second Ctrl-C names.
 */
export async function whileInterruptible<T>(
  reporter: Reporter,
  body: (signal: AbortSignal, inHand: Set<string>) => Promise<T>,
): Promise<T> {
  const inHand = new Set<string>();
  const guard = onInterrupt({
    first(name) {
      reporter.emit({
        type: "warn",
        message: `${name}: stopping at the next safe point (the server in hand is finished or restored first); press Ctrl-C again to quit now`,
      });
    },
    again(name) {
      const pending = [...inHand].map((server) => `${server} is out of rotation, maybe mid-switch`);
      reporter.emit({
        type: "error",
        message: `${name} again: quitting now.${pending.length > 0 ? ` Left undone: ${pending.join("; ")}.` : ""} The servers may keep this command's lock (and journal): run \`${nexusCommand("status")}\`, and \`${nexusCommand("recover")}\` if it says so.`,
      });
      reporter.close();
      process.exit(EXIT.needsHuman);
    },
  });
  try {
    return await body(guard.signal, inHand);
  } finally {
    guard.dispose();
  }
}

export { DEFAULT_CONFIG_FILE, UsageError };
