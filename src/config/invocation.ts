import { shq } from "../remote/quote.js";

/** The config file read when no -c is given. */
export const DEFAULT_CONFIG_FILE = "deploy.config.json";
/** The label of `-c -`: the config read from standard input. */
export const STDIN_LABEL = "(stdin)";

/**
 * What on the command line chose the config this run read. A hint that says "run `nexus trust
 * web1`" must repeat it: copied in a setup with `-d staging` or `-c ops/deploy.json`, it would act
 * on another config (another fleet, another known_hosts). A module of its own, that imports no
 * other config module: hints are built all over, down to the balancer drivers that the schema
 * (load.ts) imports.
 */
export interface Invocation {
  /** The config file as `Config.file` names it ("(stdin)" for `-c -`). */
  file: string;
  destination?: string;
  /** --ssh-key and --known-hosts as given: they replace the config's values. */
  sshKey?: string;
  knownHosts?: string;
}

/** `nexus`, then the options that read the same config: `nexus -c ops/deploy.json -d staging`. */
export function renderInvocation(invocation: Invocation | undefined): string {
  const words = ["nexus"];
  if (invocation) {
    const { file, destination, sshKey, knownHosts } = invocation;
    if (file === STDIN_LABEL) words.push("-c", "-");
    else if (file !== DEFAULT_CONFIG_FILE) words.push("-c", shq(file));
    if (destination) words.push("-d", shq(destination));
    if (sshKey) words.push("--ssh-key", shq(sshKey));
    if (knownHosts) words.push("--known-hosts", shq(knownHosts));
  }
  return words.join(" ");
}

let current: Invocation | undefined;

/** Called once the CLI has read its config: every hint from then on repeats these options. */
export function rememberInvocation(invocation: Invocation | undefined): void {
  current = invocation;
}

/**
 * A nexus command for a message to show, each word shell-quoted: `nexusCommand("trust", "web1")`
 * is `nexus trust web1`, or `nexus -d staging trust web1` when this run read the staging config.
 */
export function nexusCommand(...words: string[]): string {
  return [renderInvocation(current), ...words.map(shq)].join(" ");
}
