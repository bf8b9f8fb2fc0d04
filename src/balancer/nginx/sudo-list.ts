/**
 * Whether the whole `sudo -n -l` listing lets `command` (as sudo runs it: no `sudo` in front) run
 * without a password: a NOPASSWD entry that is the command, its program alone (any arguments), a
 * glob matching it, or ALL; or `!authenticate` among the defaults. `sudo -n -l COMMAND` alone says
 * yes as soon as some rule allows the command and any rule needs no password (sudo's default
 * `listpw=any`), even when the rule that allows it asks for one. Undefined when there is no
 * listing to read (sudo asked for a password to list at all).
 */
export function sudoListAllows(listing: string, command: string): boolean | undefined {
  if (!/may run the following commands/i.test(listing)) return undefined;
  if (/!authenticate/.test(listing)) return true;
  const wanted = command.trim().split(/\s+/).join(" ");
  const program = wanted.split(" ")[0];
  for (const line of listing.split("\n")) {
    const at = line.indexOf("NOPASSWD:");
    if (at < 0) continue;
    let rest = line.slice(at + "NOPASSWD:".length);
    // A PASSWD: tag ends the commands the NOPASSWD: applies to.
    const passwd = rest.search(/(^|[\s,])PASSWD:/);
    if (passwd >= 0) rest = rest.slice(0, passwd);
    for (const raw of rest.split(/(?<!\\),/)) {
      const entry = raw
        .replace(/^\s*(?:[A-Z_]+:\s*)*/, "")
        .trim()
        .split(/\s+/)
        .join(" ")
        .replace(/\\(.)/g, "$1");
      if (entry === "ALL" || entry === wanted || entry === program || glob(entry).test(wanted)) return true;
    }
  }
  return false;
}

function glob(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
