import { scriptFile, withProgram } from "./script-file.js";

/**
 * Runs a user's shell command (a hook, `nexus exec`) on a server: in a directory, with an env that
 * arrives on stdin (never on a command line, where `ps` would show it), in its own process group,
 * with a timeout that bounds the SSH channel, not only the shell (what the command leaves running
 * is reported, and stopped at the timeout); when stdin closes the whole group is stopped
 * (command-runner.cjs says how).
 *
 * $1 the directory, $2 the shell command, $3 the timeout in ms (0: none). The env is stdin's first line, as JSON.
 */
export const COMMAND_SCRIPT = withProgram(
  scriptFile(import.meta.url, "command.sh"),
  scriptFile(import.meta.url, "command-runner.cjs"),
);

/** Exit codes COMMAND_SCRIPT uses for a command it stopped. */
export const COMMAND_EXIT = { timeout: 124, interrupted: 130 } as const;

/** The first line COMMAND_SCRIPT reads: the command's env. Values may hold anything JSON can. */
export function envLine(env: Record<string, string>): string {
  return `${JSON.stringify(env)}\n`;
}
