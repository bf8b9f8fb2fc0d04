import type * as z from "zod";
import type { CheckItem } from "../check/types.js";
import type { Config } from "../config/load.js";
import type { Emit } from "../events/events.js";
import type { InteractiveRunner } from "../ssh/session.js";
import type { Counts, TrafficSource } from "../watch/traffic.js";
import type { Balancer } from "./balancer.js";

/**
 * A load balancer driver, as one value: everything nexus does with a kind of balancer goes
 * through it, and `drivers.ts` lists them. Nothing outside the driver's folder asks which kind a
 * balancer is: a new driver is a folder that exports one of these, and one line in that list
 * (docs/architecture.md, "Adding a balancer driver"). The value itself stays light (the config
 * schema is made from it, for every command): its driver code is imported when first used.
 */
export interface BalancerDriver<Entry extends BalancerEntry = BalancerEntry> {
  /** The config's `balancer.type`. */
  readonly type: Entry["type"];
  /** The config entry: a strict object whose `type` is the literal `type`. */
  readonly schema: z.ZodObject<z.ZodRawShape>;
  /** Two entries with the same identity are the same balancer, listed twice (a config error). */
  identity(entry: Entry): string;
  /** What the schema alone cannot tell: names that must be the config's servers (`at`: "balancer[1]"). */
  problems?(entry: Entry, at: string, servers: ReadonlySet<string>): string[];
  create(entry: Entry, runner: InteractiveRunner, context: BalancerContext): Promise<Balancer>;
  /** `nexus check`: read-only readiness of the balancer host, each problem with its fix. */
  check(entry: Entry, context: CheckContext): Promise<CheckItem[]>;
  /** `nexus setup`: what can be made ready on the balancer host, and what a human must do. */
  setup(entry: Entry, context: SetupContext): Promise<void>;
  /** `rolling.watch`: the balancer's per-server traffic, checked before anything is drained. */
  watch(entry: Entry, context: WatchContext): Promise<TrafficWatch>;
  /** `nexus <type>-config`: the balancer config nexus recommends for the configured servers. */
  readonly configCommand: ConfigCommand;
  /** `nexus init`: this driver's flags, questions and starter entry. */
  readonly starter: StarterSpec;
}

/** What `nexus init` knows when it writes a balancer entry. */
export interface StarterAnswers {
  /** The app name. */
  name: string;
  /** The SSH user, when given. */
  user?: string;
  /** `balancer.host`. */
  host: string;
  /** `rolling.watch`, when the starter config watches. */
  watch?: string;
  /** The driver's own flags and answers, by their camelCase option names. */
  values: Record<string, string | undefined>;
}

/** Asks one question on a terminal; Enter keeps the fallback. */
export type Ask = (question: string, fallback?: string) => Promise<string | undefined>;

/** A driver's part of `nexus init`. */
export interface StarterSpec {
  /** The balancer's name in questions ("Nginx"). */
  readonly label: string;
  /** `nexus init`'s flags for this driver; each takes a value, its camelCase name keys `values`. */
  readonly options: readonly { flags: string; description: string }[];
  /** On a terminal: asks for what the flags left out, into `answers.values`. */
  ask(answers: StarterAnswers, ask: Ask): Promise<void>;
  /** The config's `balancer` entry. */
  entry(answers: StarterAnswers): Record<string, unknown>;
  /** What the config command prints for the "next" list ("the servers file and the upstream block"). */
  readonly configFor: string;
}

/** What every balancer entry of the config has, whatever its type. */
export interface BalancerEntry {
  type: string;
  /** The server that runs the balancer, or "local" when it runs where nexus runs. */
  host: string;
  drainTimeout: number;
}

export interface BalancerContext {
  /** Home directory on the balancer host, for paths starting with "~/". */
  home: string;
  onWarning?: (message: string) => void;
  /** --verbose: each change sent to a runtime API (its reads, polled every few ms, are not shown). */
  onCommand?: (server: string, command: string) => void;
}

/** The balancer host as a command reaches it: over its server's SSH session, or here for "local". */
export interface BalancerHost {
  runner: InteractiveRunner;
  home: string;
}

export interface CheckContext {
  config: Config;
  host: BalancerHost;
  /** The check items' target: "<host> (balancer)". */
  target: string;
}

export interface SetupContext {
  config: Config;
  say(line: string): void;
  dryRun?: boolean;
  /** Write what needs root through `sudo -n` (setup --sudo). */
  sudo?: boolean;
  /** The balancer host, or undefined when setup could not log in to it. */
  runner?: InteractiveRunner;
  /** Whether the host was expected to be reached (setup has a deploy key to log in with). */
  reachable: boolean;
}

export interface WatchContext {
  config: Config;
  emit: Emit;
  host: BalancerHost;
  /** Closes something the watch keeps open (a runtime API connection of its own) with the fleet. */
  closeWith(closable: { close?(): Promise<void> }): void;
}

/** Where the watch reads a balancer's traffic, and how its keys name the config's servers. */
export interface TrafficWatch {
  source: TrafficSource;
  /** The server a source key (an upstream address for Nginx, a server name for HAProxy) belongs to. */
  serverOf(key: string): string | undefined;
  /** The fleet's requests and failures before the deploy, when the balancer can tell. */
  baseline?: Counts;
}

/** A command that prints the balancer config nexus recommends (`nexus nginx-config`). */
export interface ConfigCommand {
  readonly name: string;
  readonly description: string;
  readonly options: readonly { flags: string; description: string; default?: string | boolean }[];
  /** The help's examples, each starting with "nexus ". */
  readonly examples: readonly string[];
  /** The text for a terminal, and the `--json` result line (with `command`: `name`). */
  render(config: Config, flags: Record<string, unknown>): { text: string; result: Record<string, unknown> };
  /** The `--json` result's fields, for events.schema.json (src/events/results.ts). */
  readonly resultShape: z.ZodRawShape;
}
