import type { Config } from "../config/load.js";
import type { DeployEvent } from "../events/events.js";
import { type Redact, redactDeep, secretRedactor } from "./redact.js";
import type { Reporter } from "./reporter.js";

/**
 * The secrets of the config this run read (`maskSecretsOf`, called when the CLI reads it): one
 * config per process, so module state is enough, and it reaches every event without threading a
 * redactor through each command. Commands still mask what they print themselves (logs, exec);
 * this is the net under everything else: a failed build's output, a remote command's stderr in
 * an error message. It masks the config's secrets (values from the environment, under secret-
 * looking keys, the deploy key), not every env value: "production" stays readable in a path.
 */
let redact: Redact = (text) => text;

export function maskSecretsOf(config: Config): void {
  redact = secretRedactor(config, process.env, { secretsOnly: true });
}

/** The reporter, every event and printed line passed through the config's secrets first. */
export function maskingReporter(inner: Reporter): Reporter {
  return {
    emit: (event: DeployEvent) => inner.emit(redactDeep(event, redact)),
    print: (line: string) => inner.print(redact(line)),
    close: () => inner.close(),
  };
}
