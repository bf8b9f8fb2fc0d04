import { SAY_FUNCTION } from "../../check/facts.js";
import { script } from "../../remote/op.js";
import { scriptFile, withFunctions } from "../../remote/script-file.js";

export interface BalancerScriptInput {
  upstreamFile: string;
  pidFile: string;
  testCommand: string;
  reloadCommand: string;
}

/** `nginx ... -t` → `nginx ... -T` (test and dump the config), which lists every included file. */
export function dumpCommand(testCommand: string): string | undefined {
  return /\s-t\s*$/.test(testCommand) ? testCommand.replace(/-t\s*$/, "-T") : undefined;
}

/** `sudo [-n] cmd args` → `cmd args`, what sudo runs; undefined for other forms. */
export function sudoTarget(command: string): string | undefined {
  const match = /^\s*sudo\s+(?:-n\s+)?(.+)$/.exec(command);
  if (!match || /^-/.test(match[1] as string) || /[;&|`$()<>]/.test(match[1] as string)) return undefined;
  return match[1];
}

/** `sudo [-n] cmd args` → `sudo -n -l cmd args`: does the policy allow it without a password? */
export function sudoListCommand(command: string): string | undefined {
  const target = sudoTarget(command);
  return target === undefined ? undefined : `sudo -n -l ${target}`;
}

/**
 * $1 the upstream file, $2 the Nginx pid file, $3 the test command, $4 its dump twin (empty when
 * there is none), $5 `sudo -n -l` for the reload command (empty when it does not go through sudo),
 * $6 the reload command's program (looked for on the PATH when there is no sudo to ask).
 * Read-only facts about the balancer host: the upstream file, the pid file, and whether the test
 * (run for real: `nginx -t` changes nothing), the dump and the reload (asked of sudo, not run)
 * work without a password prompt.
 */
export const BALANCER_CHECK_SCRIPT = withFunctions(scriptFile(import.meta.url, "check.sh"), SAY_FUNCTION);

export function balancerScript(input: BalancerScriptInput): string {
  return script(
    BALANCER_CHECK_SCRIPT,
    input.upstreamFile,
    input.pidFile,
    input.testCommand,
    dumpCommand(input.testCommand) ?? "",
    sudoListCommand(input.reloadCommand) ?? "",
    input.reloadCommand.trim().split(/\s+/)[0] ?? "",
  );
}
