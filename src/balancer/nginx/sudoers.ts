/** Splits a simple command line on whitespace; undefined when it needs a shell (quotes, pipes, ...). */
function words(command: string): string[] | undefined {
  if (/["'`$;&|<>()\\]/.test(command)) return undefined;
  return command.trim().split(/\s+/).filter(Boolean);
}

/** sudo's options that take no value (alone or clustered, `-nE`); "--" ends the options. */
const FLAG_ONLY = /^(-[nEHSkAP]+|--(non-interactive|preserve-env|set-home|stdin|reset-timestamp|askpass))$/;

/** The command sudo runs, and whether every option before it is one FLAG_ONLY knows. */
function sudoCommand(command: string): { argv: string[]; plain: boolean } | undefined {
  const argv = words(command);
  if (argv?.[0] !== "sudo") return undefined;
  let i = 1;
  let plain = true;
  for (; argv[i]?.startsWith("-"); i++) {
    if (argv[i] === "--") {
      i++;
      break;
    }
    if (!FLAG_ONLY.test(argv[i] as string)) plain = false;
  }
  return argv.length > i ? { argv: argv.slice(i), plain } : undefined;
}

/**
 * `sudo -n nginx -t` → ["nginx", "-t"]; undefined when the command does not go through sudo, or
 * when an option may take a value (`-u www-data`: "www-data" is no command, and the rule's
 * run-as user would change): `needsHandWrittenRule` tells that case apart.
 */
export function withoutSudo(command: string): string[] | undefined {
  const parsed = sudoCommand(command);
  return parsed?.plain ? parsed.argv : undefined;
}

/** A sudo command whose options nexus does not turn into a sudoers rule (`-u`, `-g`, `-C`, ...). */
export function needsHandWrittenRule(command: string): boolean {
  const parsed = sudoCommand(command);
  return parsed !== undefined && !parsed.plain;
}

function sudoersArg(arg: string): string {
  return arg.replace(/[\\,:=]/g, (c) => `\\${c}`);
}

/**
 * The sudoers line that lets `user` run the balancer's test (and its read-only -T twin, which
 * `nexus check` uses) and reload commands as root without a password, and nothing else.
 * Undefined when neither command uses sudo. Commands must name absolute paths in sudoers.
 */
export function sudoersLine(user: string, testCommand: string, reloadCommand: string): string | undefined {
  const test = withoutSudo(testCommand);
  const reload = withoutSudo(reloadCommand);
  const commands: string[][] = [];
  if (test) {
    commands.push(test);
    if (test.at(-1) === "-t") commands.push([...test.slice(0, -1), "-T"]);
  }
  if (reload) commands.push(reload);
  if (commands.length === 0) return undefined;
  return `${user} ALL=(root) NOPASSWD: ${commands.map((argv) => argv.map(sudoersArg).join(" ")).join(", ")}`;
}

/** Where nexus setup --sudo puts the rule: one file per app. */
export function sudoersFile(appName: string): string {
  return `/etc/sudoers.d/nexus-${appName.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}
