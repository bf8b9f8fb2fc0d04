import { shq } from "../remote/quote.js";
import { SCRIPT_PRELUDE } from "./facts.js";

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
 * Read-only facts about the balancer host: the upstream file, the pid file, and whether the
 * test (run for real: `nginx -t` changes nothing), the dump and the reload (asked of sudo, not
 * run) work without a password prompt.
 */
export function balancerScript(input: BalancerScriptInput): string {
  const file = shq(input.upstreamFile);
  const pid = shq(input.pidFile);
  const dump = dumpCommand(input.testCommand);
  const reloadList = sudoListCommand(input.reloadCommand);
  return [
    SCRIPT_PRELUDE,
    'say user "$(id -un)"',
    `[ -e ${file} ] && say up_exists 1`,
    `[ -r ${file} ] && say up_readable 1`,
    `[ -w ${file} ] && say up_writable 1`,
    `say up_real "$(readlink -f ${file} 2>/dev/null)"`,
    `say up_owner "$(ls -ld ${file} 2>/dev/null | awk '{print $3":"$4" "$1}')"`,
    "command -v flock >/dev/null 2>&1 && say flock 1",
    `[ -r ${file} ] && { echo @@upstream; cat ${file}; echo; echo @@end; }`,
    'say uid "$(id -u)"',
    `if [ -r ${pid} ]; then say pid_readable 1; p=$(cat ${pid}); [ -n "$p" ] && [ -d "/proc/$p" ] && { say pid_alive 1; say master_uid "$(stat -c %u "/proc/$p" 2>/dev/null)"; }; fi`,
    `out=$( { ${input.testCommand}
} 2>&1 </dev/null ); say test_rc $?`,
    'echo @@test; printf "%s\\n" "$out" | tail -n 5; echo @@end',
    ...(dump
      ? [
          `out=$( { ${dump}
} 2>&1 </dev/null ); say dump_rc $?`,
          `echo @@dump; printf "%s\\n" "$out" | grep -E '^# configuration file |password|sudo|emerg' | head -n 5000; echo @@end`,
        ]
      : []),
    // Without sudo to ask, whether the reload's command is there at all.
    ...(reloadList
      ? []
      : [
          `say reload_bin "$(command -v ${shq(input.reloadCommand.trim().split(/\s+/)[0] ?? "")} 2>/dev/null)"`,
        ]),
    ...(reloadList
      ? [
          `out=$(${reloadList} 2>&1 </dev/null); say reload_sudo_rc $?`,
          'echo @@reload; printf "%s\\n" "$out" | tail -n 3; echo @@end',
          'out=$(sudo -n -l 2>&1 </dev/null); echo @@sudolist; printf "%s\\n" "$out" | head -n 100; echo @@end',
        ]
      : []),
    "exit 0",
  ].join("\n");
}
