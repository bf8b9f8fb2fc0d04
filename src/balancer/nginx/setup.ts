import { nexusCommand } from "../../config/invocation.js";
import { resolveRemotePathOn } from "../../remote/layout.js";
import { script } from "../../remote/op.js";
import { cmd } from "../../remote/quote.js";
import { scriptFile } from "../../remote/script-file.js";
import type { CommandRunner } from "../../ssh/session.js";
import type { SetupContext } from "../driver.js";
import type { NginxBalancerConfig } from "./schema.js";
import { needsHandWrittenRule, sudoersFile, sudoersLine } from "./sudoers.js";
import {
  holdsUpstreamBlock,
  renderServersFile,
  renderUpstreamBlock,
  serversFileFix,
  UPSTREAM_BLOCK_RISK,
} from "./upstream.js";

/** $1 the servers file, $2 "sudo" to write it through `sudo -n tee`: its content from stdin. */
export const WRITE_SERVERS_FILE_SCRIPT = scriptFile(import.meta.url, "write-servers-file.sh");

/** $1 a sudoers line, $2 the sudoers.d file: checked by visudo, then installed 0440 through `sudo -n`. */
export const INSTALL_SUDOERS_SCRIPT = scriptFile(import.meta.url, "install-sudoers.sh");

/**
 * `nexus setup` on the Nginx host: the servers file written when it is missing (every server of
 * the config), then what root must do: include it inside the upstream block, let the login user
 * edit it in place, and allow the test and reload commands without a password.
 */
export async function setupNginx(entry: NginxBalancerConfig, context: SetupContext): Promise<void> {
  const { say, dryRun, runner } = context;
  const target = `${entry.host} (balancer)`;
  if (!runner) {
    if (dryRun)
      say(
        `${target}: would write ${entry.upstreamFile} if it is missing, and show the include and sudoers lines`,
      );
    else if (context.reachable) say(`${target}: not reached, skipped`);
    return;
  }
  const home = (await runner.run('printf %s "$HOME"')).trim();
  const file = resolveRemotePathOn(target, entry.upstreamFile, home);
  const user = (await runner.run("id -un")).trim();
  await writeServersFile(runner, file, user, target, context);
  const block = renderUpstreamBlock({ name: entry.upstream ?? "nexus_app", include: file });
  say(
    `${target}: Nginx must include it inside the upstream block, in a file only root can write (not in the http block: there it could hold any directive): ${block.replace(/\s*\n\s*/g, " ").trim()}`,
  );
  if ((await runner.exec(cmd("test", "-w", file))).code === 0) say(`${target}: ${user} can edit it in place`);
  else
    say(
      `${target}: ${user} must be able to edit it in place, as root: chgrp ${user} ${file} && chmod 664 ${file}`,
    );
  await sudoersStep(entry, runner, user, target, context);
}

/** The servers file, written from the config when it is missing; one that holds whole blocks is a risk said. */
async function writeServersFile(
  runner: CommandRunner,
  file: string,
  user: string,
  target: string,
  context: SetupContext,
): Promise<void> {
  const { say } = context;
  if ((await runner.exec(cmd("test", "-e", file))).code === 0) {
    say(`${target}: upstream file ${file} exists (nexus edits only its server lines)`);
    const text = await runner.exec(cmd("cat", file));
    if (text.code === 0 && holdsUpstreamBlock(text.stdout))
      say(`${target}: WARNING: ${UPSTREAM_BLOCK_RISK} Instead, as root: ${serversFileFix()}`);
    return;
  }
  if (context.dryRun) {
    say(`${target}: would write ${file} with every server of the config`);
    return;
  }
  const content = renderServersFile({ servers: context.config.servers.map((s) => s.upstream) });
  let result = await runner.exec(script(WRITE_SERVERS_FILE_SCRIPT, file, ""), { stdin: content });
  if (result.code !== 0 && context.sudo)
    result = await runner.exec(script(WRITE_SERVERS_FILE_SCRIPT, file, "sudo"), { stdin: content });
  if (result.code === 0) say(`${target}: wrote ${file} (its server lines)`);
  else
    say(
      `${target}: cannot write ${file} as ${user}; as root, write the server lines \`${nexusCommand("nginx-config")}\` prints for it there`,
    );
}

/** The sudoers rule for the test and reload commands: shown, or installed with --sudo. */
async function sudoersStep(
  entry: NginxBalancerConfig,
  runner: CommandRunner,
  user: string,
  target: string,
  context: SetupContext,
): Promise<void> {
  const { say, dryRun } = context;
  const handWritten = [entry.testCommand, entry.reloadCommand].filter(needsHandWrittenRule);
  if (handWritten.length > 0) {
    say(
      `${target}: ${handWritten.map((c) => `"${c}"`).join(" and ")} give sudo options nexus does not turn into a sudoers rule (a run-as user, a group, ...): write the NOPASSWD rule for ${user} by hand, as root, with visudo`,
    );
    return;
  }
  const rule = sudoersLine(user, entry.testCommand, entry.reloadCommand);
  if (!rule) {
    say(
      `${target}: the test and reload commands do not use sudo: nothing to add to sudoers (a user who does not own the Nginx master cannot reload it: then use "sudo -n /usr/sbin/nginx -t" and "sudo -n /usr/sbin/nginx -s reload", and run setup again)`,
    );
    return;
  }
  const sudoers = sudoersFile(context.config.app.name);
  if (!context.sudo || dryRun) {
    say(`${target}: sudoers rule (install as root, e.g. with visudo -f ${sudoers}): ${rule}`);
    if (dryRun && context.sudo) say(`${target}: would install it through sudo -n`);
    return;
  }
  const result = await runner.exec(script(INSTALL_SUDOERS_SCRIPT, rule, sudoers));
  if (result.code === 0) say(`${target}: installed ${sudoers}: ${rule}`);
  else
    say(
      `${target}: could not install the sudoers rule through sudo -n (${(result.stderr || result.stdout).trim()}); as root: ${rule}`,
    );
}
