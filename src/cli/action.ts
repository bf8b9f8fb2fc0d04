import type { Command } from "commander";
import type { RollCommandOptions } from "../deploy/engine.js";
import type { DeployEvent } from "../events/events.js";
import { notifyingReporter } from "../notify/notifier.js";
import { maskingReporter } from "../report/masking.js";
import type { Reporter } from "../report/reporter.js";
import {
  errorEvents,
  exitCodeForError,
  type GlobalOptions,
  pickReporter,
  whileInterruptible,
} from "./context.js";

/** Where a command's exit code goes (`main` returns it). */
export type SetExit = (code: number) => void;

/** A command, made for a program whose exit code `setExit` receives. */
export type CommandFactory = (setExit: SetExit) => Command;

/** What the body of a command that reports events gets. */
export interface EventsContext {
  /** The global flags: --config, --json, --verbose… */
  global: GlobalOptions;
  /** The events' sink, as the flags and the terminal ask (pretty, plain lines, JSON, GitHub Actions). */
  reporter: Reporter;
}

/** What the body of a command whose output is text on stdout gets. */
export interface TextContext {
  global: GlobalOptions;
}

type Handler = (...received: unknown[]) => Promise<void>;

/**
 * The one way a command runs. Its body returns the exit code; an error a user can act on
 * (`NexusError`) is its message and its exit code, anything else is a bug, said as one. The
 * failure is said where the command speaks: as an error event through its reporter (deploy,
 * status…), or, for a command whose output is text on stdout (nginx-config, check…), as one line
 * on stderr after `errorPrefix` ("nexus check"). Commander's arguments (positional ones, then the
 * flags) follow the context.
 */
export function action<Args extends unknown[]>(
  setExit: SetExit,
  body: (context: EventsContext, ...args: Args) => Promise<number>,
): Handler;
export function action<Args extends unknown[]>(
  setExit: SetExit,
  body: (context: TextContext, ...args: Args) => Promise<number> | number,
  errorPrefix: string,
): Handler;
export function action<Args extends unknown[]>(
  setExit: SetExit,
  body: (context: EventsContext, ...args: Args) => Promise<number> | number,
  errorPrefix?: string,
): Handler {
  return async (...received) => {
    const command = received.at(-1) as Command;
    const args = received.slice(0, -1) as Args;
    const global = command.optsWithGlobals<GlobalOptions>();
    if (errorPrefix !== undefined) {
      try {
        setExit(
          await (body as (context: TextContext, ...args: Args) => Promise<number>)({ global }, ...args),
        );
      } catch (error) {
        const { code, message } = exitCodeForError(error);
        process.stderr.write(`${errorPrefix}: ${message}\n`);
        setExit(code);
      }
      return;
    }
    // Events reach the webhooks (config `notify`) masked, like everything else nexus shows.
    const notifying = notifyingReporter(await pickReporter(global));
    const reporter = maskingReporter(notifying);
    try {
      setExit(await body({ global, reporter }, ...args));
    } catch (error) {
      for (const event of errorEvents(error)) reporter.emit(event);
      setExit(exitCodeForError(error).code);
    } finally {
      await notifying.flush();
      reporter.close();
    }
  };
}

/**
 * A command that rolls the fleet (deploy, rollback, restart), run under Ctrl-C handling
 * (whileInterruptible) with what every such command takes from the command line.
 */
export function rollAction(
  { reporter, global }: EventsContext,
  roll: (options: RollCommandOptions) => Promise<{ exitCode: number }>,
): Promise<number> {
  return whileInterruptible(reporter, async (signal, inHand) => {
    const emit = (event: DeployEvent) => reporter.emit(event);
    const options = { emit, signal, acceptNew: global.acceptNew, verbose: global.verbose, inHand };
    return (await roll(options)).exitCode;
  });
}
