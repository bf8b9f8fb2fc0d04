import { type Facts, parseFacts } from "../../check/facts.js";
import type { CheckItem } from "../../check/types.js";
import { nexusCommand } from "../../config/invocation.js";
import { DEFAULT_CONFIG_FILE } from "../../config/load.js";
import { resolveRemotePath } from "../../remote/layout.js";
import { shq } from "../../remote/quote.js";
import type { CheckContext } from "../driver.js";
import { balancerScript, dumpCommand, sudoListCommand, sudoTarget } from "./check-script.js";
import type { NginxBalancerConfig } from "./schema.js";
import { sudoListAllows } from "./sudo-list.js";
import { sudoersFile, sudoersLine } from "./sudoers.js";
import { holdsUpstreamBlock, listUpstreamServers, serversFileFix, UPSTREAM_BLOCK_RISK } from "./upstream.js";

/** `nexus check` of an Nginx host: one read-only script, then what its facts say. */
export async function checkNginx(entry: NginxBalancerConfig, context: CheckContext): Promise<CheckItem[]> {
  const { host, config, target } = context;
  const input = {
    upstreamFile: resolveRemotePath(entry.upstreamFile, host.home),
    pidFile: resolveRemotePath(entry.pidFile, host.home),
    testCommand: entry.testCommand,
    reloadCommand: entry.reloadCommand,
  };
  const facts = parseFacts(await host.runner.run(balancerScript(input), { what: "checking the balancer" }));
  return balancerItems(facts, {
    target,
    ...input,
    ...(entry.upstream ? { upstream: entry.upstream } : {}),
    appName: config.app.name,
    configFlag: config.file === DEFAULT_CONFIG_FILE ? "" : ` -c ${shq(config.file)}`,
    servers: config.servers.map((s) => ({ name: s.name, upstream: s.upstream })),
    hasDump: dumpCommand(input.testCommand) !== undefined,
    hasReloadList: sudoListCommand(input.reloadCommand) !== undefined,
  });
}

export interface BalancerCheckContext {
  target: string;
  upstreamFile: string;
  upstream?: string;
  pidFile: string;
  testCommand: string;
  reloadCommand: string;
  servers: { name: string; upstream: string }[];
  hasDump: boolean;
  hasReloadList: boolean;
  /** For the fixes: the sudoers file's name, and ` -c FILE` when the config is not the default. */
  appName?: string;
  configFlag?: string;
}

/** The rule itself, installed through visudo (which checks it), as a command that works as printed. */
function sudoersFix(ctx: BalancerCheckContext, user: string | undefined): string {
  const rule = user && sudoersLine(user, ctx.testCommand, ctx.reloadCommand);
  if (!rule) return "allow them without a password in sudoers, as root (docs/servers.md)";
  const file = sudoersFile(ctx.appName ?? "app");
  return `allow them without a password, as root on the balancer host: \`printf '%s\\n' ${shq(rule)} | EDITOR=tee visudo -f ${file}\` (visudo checks it), or \`${nexusCommand("setup", "--sudo")}\``;
}

function passwordPrompt(text: string | undefined): boolean {
  return /password is required|a terminal is required|may not run sudo|not allowed to execute|not in the sudoers/i.test(
    text ?? "",
  );
}

/** One check item of the balancer host, added to the report. */
type Add = (check: string, status: CheckItem["status"], detail: string, fix?: string) => void;

export function balancerItems(facts: Facts, ctx: BalancerCheckContext): CheckItem[] {
  const items: CheckItem[] = [];
  const add: Add = (check, status, detail, fix) =>
    items.push({ target: ctx.target, check, status, detail, ...(fix ? { fix } : {}) });
  upstreamItems(facts, ctx, add);
  testItem(facts, ctx, add);
  includedItem(facts, ctx, add);
  reloadItem(facts, ctx, add);
  pidFileItem(facts, ctx, add);
  return items;
}

/** The upstream file: there, readable, server lines only, every server listed, editable in place. */
function upstreamItems(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const user = v.get("user") ?? "the login user";
  if (v.get("up_exists") !== "1" || v.get("up_readable") !== "1") {
    add(
      "upstream file",
      "fail",
      `${ctx.upstreamFile} ${v.get("up_exists") === "1" ? `is not readable by ${user}` : "does not exist"}`,
      `\`nexus${ctx.configFlag ?? ""} setup\` writes it from the config; or, as root on the balancer host: \`nexus${ctx.configFlag ?? ""} nginx-config --servers-only > ${shq(ctx.upstreamFile)}\``,
    );
  } else {
    const text = facts.sections.get("upstream") ?? "";
    let listed: string[] = [];
    try {
      listed = listUpstreamServers(text, ctx.upstream).map((s) => s.address);
      if (holdsUpstreamBlock(text)) add("upstream file", "warn", UPSTREAM_BLOCK_RISK, serversFileFix());
      else add("upstream file", "ok", `${ctx.upstreamFile} (server lines only)`);
    } catch (error) {
      add(
        "upstream file",
        "fail",
        (error as Error).message,
        "fix the upstream block (nexus nginx-config prints one)",
      );
    }
    const missing = ctx.servers.filter((s) => !listed.includes(s.upstream));
    if (missing.length === 0) add("upstream servers", "ok", `lists all ${ctx.servers.length} server(s)`);
    else
      add(
        "upstream servers",
        "fail",
        `missing: ${missing.map((s) => `${s.name} (${s.upstream})`).join(", ")}`,
        `add ${missing.map((s) => `\`server ${s.upstream};\``).join(" and ")} to ${ctx.upstreamFile}, test and reload Nginx`,
      );
    if (v.get("up_writable") === "1")
      add(
        "upstream edit",
        v.get("flock") === "1" ? "ok" : "warn",
        `${user} can edit it in place${v.get("flock") === "1" ? " (under flock)" : "; flock is missing, concurrent runs rely on compare-and-swap only"}`,
      );
    else
      add(
        "upstream edit",
        "fail",
        `${user} cannot write ${ctx.upstreamFile} (${v.get("up_owner") ?? "?"})`,
        `as root on the balancer host: \`chgrp "$(id -gn ${shq(user)})" ${shq(ctx.upstreamFile)} && chmod 664 ${shq(ctx.upstreamFile)}\` (nexus edits it in place and keeps its backup elsewhere)`,
      );
  }
}

/** The Nginx config test, run for real. */
function testItem(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const SUDOERS_FIX = sudoersFix(ctx, v.get("user"));
  const testOut = facts.sections.get("test");
  if (v.get("test_rc") === "0") add("nginx test", "ok", ctx.testCommand);
  else if (passwordPrompt(testOut))
    add(
      "nginx test",
      "fail",
      `\`${ctx.testCommand}\` asks for a password: ${lastLine(testOut)}`,
      SUDOERS_FIX,
    );
  else
    add(
      "nginx test",
      "fail",
      `\`${ctx.testCommand}\` failed: ${lastLine(testOut)}`,
      "fix the Nginx configuration (or balancer.testCommand); as non-root it needs `sudo -n`",
    );
}

/** The running config (`nginx -T`) includes the upstream file: else edits to it change nothing. */
function includedItem(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const SUDOERS_FIX = sudoersFix(ctx, v.get("user"));
  if (!ctx.hasDump)
    add(
      "upstream included",
      "warn",
      "balancer.testCommand does not end in -t, so `nginx -T` cannot list the included files",
    );
  else {
    const dump = facts.sections.get("dump") ?? "";
    const files = [...dump.matchAll(/^# configuration file (.+):$/gm)].map((m) => m[1]);
    const real = v.get("up_real");
    if (v.get("dump_rc") !== "0")
      add(
        "upstream included",
        "fail",
        `cannot run \`nginx -T\`: ${lastLine(dump)}`,
        passwordPrompt(dump)
          ? `${SUDOERS_FIX}; the check needs nginx -T (read-only) too`
          : "see the nginx test above",
      );
    else if (files.includes(ctx.upstreamFile) || (real && files.includes(real)))
      add("upstream included", "ok", "the running configuration includes it (nginx -T)");
    else
      add(
        "upstream included",
        "fail",
        `Nginx does not include ${ctx.upstreamFile}: edits to it change nothing`,
        `add \`include ${ctx.upstreamFile};\` inside the upstream block (\`${nexusCommand("nginx-config")}\` prints it), or point balancer.upstreamFile at the included file, then test and reload`,
      );
  }
}

/** The reload: allowed without a password (asked of sudo, not run), or able to signal the master. */
function reloadItem(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const SUDOERS_FIX = sudoersFix(ctx, v.get("user"));
  if (!/^\s*sudo\b/.test(ctx.reloadCommand)) reloadWithoutSudo(facts, ctx, add);
  else if (!ctx.hasReloadList)
    add("nginx reload", "warn", `cannot ask sudo about \`${ctx.reloadCommand}\` without running it`);
  else if (
    v.get("reload_sudo_rc") === "0" &&
    sudoListAllows(facts.sections.get("sudolist") ?? "", sudoTarget(ctx.reloadCommand) ?? "") === false
  )
    add(
      "nginx reload",
      "warn",
      `sudo allows \`${ctx.reloadCommand}\`, but no rule of \`sudo -l\` lets it run without a password: the reload may stop at a password prompt`,
      SUDOERS_FIX,
    );
  else if (v.get("reload_sudo_rc") === "0")
    add("nginx reload", "ok", `${ctx.reloadCommand} (allowed by sudo, no password)`);
  else
    add(
      "nginx reload",
      "fail",
      `sudo does not allow \`${ctx.reloadCommand}\` without a password: ${lastLine(facts.sections.get("reload"))}`,
      SUDOERS_FIX,
    );
}

/**
 * A reload without sudo. The check never reloads: "ok" needs what can be seen, the command is
 * there and its user may signal the master (its owner, or root). Anything less is not ok.
 */
function reloadWithoutSudo(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const user = v.get("user") ?? "the login user";
  const cfg = ctx.configFlag ?? "";
  const masterUid = v.get("master_uid");
  const throughSudo = `reload through sudo: set "reloadCommand": "sudo -n /usr/sbin/nginx -s reload" and "testCommand": "sudo -n /usr/sbin/nginx -t", then \`nexus${cfg} setup --sudo\` (or \`nexus${cfg} check\` again: it prints the sudoers rule)`;
  const bin = v.get("reload_bin");
  if (!bin)
    add(
      "nginx reload",
      "fail",
      `\`${ctx.reloadCommand}\` cannot run: ${ctx.reloadCommand.trim().split(/\s+/)[0]} is not on ${user}'s non-interactive PATH`,
      throughSudo,
    );
  else if (masterUid && v.get("uid") && masterUid !== v.get("uid") && v.get("uid") !== "0")
    add(
      "nginx reload",
      "warn",
      `${ctx.reloadCommand} runs as ${user}, but the Nginx master is uid ${masterUid}'s: it cannot signal it, unless the command gets root itself (a wrapper with sudo inside)`,
      throughSudo,
    );
  else if (!masterUid)
    add(
      "nginx reload",
      "warn",
      `not run (check changes nothing), and whether ${user} may signal the Nginx master is unknown (no running master in balancer.pidFile)`,
    );
  else
    add(
      "nginx reload",
      "ok",
      `not run (check changes nothing): ${bin} is there and ${user} may signal the master (uid ${masterUid})`,
    );
}

/** The master's pid file, which a reload's confirmation reads. */
function pidFileItem(facts: Facts, ctx: BalancerCheckContext, add: Add): void {
  const v = facts.values;
  const user = v.get("user") ?? "the login user";
  if (v.get("pid_readable") !== "1")
    add(
      "pid file",
      "fail",
      `${ctx.pidFile} is not readable by ${user}: reloads cannot be confirmed`,
      "set balancer.pidFile to Nginx's pid file (the `pid` directive; /run/nginx.pid on Debian)",
    );
  else if (v.get("pid_alive") !== "1")
    add(
      "pid file",
      "fail",
      `${ctx.pidFile} names no running process`,
      "start Nginx, or fix balancer.pidFile",
    );
  else add("pid file", "ok", ctx.pidFile);
}

function lastLine(text: string | undefined): string {
  return (text ?? "").trim().split("\n").at(-1) ?? "";
}
