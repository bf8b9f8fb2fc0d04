import { readFileSync, writeFileSync } from "node:fs";
import { Command } from "commander";
import { action, type SetExit } from "../cli/action.js";
import { type GlobalOptions, readConfig } from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { nexusCommand } from "../config/invocation.js";
import type { Config, ServerConfig } from "../config/load.js";
import { EXIT } from "../errors.js";
import { confirm } from "../setup/prompt.js";
import { hostKeyFile } from "../setup/run.js";
import { resolveTarget, type SshTarget } from "../ssh/connect.js";
import { fetchHostKey } from "../ssh/fetch-host-key.js";
import { appendKnownHost, hostKeyAlgorithms, readKnownHosts } from "../ssh/host-keys.js";
import {
  checkHostKey,
  fingerprintSha256,
  hostPatternFor,
  type KnownHostEntry,
  keyTypeOf,
  knownHostKeyTypes,
  parseKnownHosts,
} from "../ssh/known-hosts.js";
import { readSshConfig } from "../ssh/ssh-config.js";

interface TrustFlags {
  yes?: boolean;
  replace?: boolean;
}

/**
 * Removes the known_hosts lines that name only this host (plain `host` / `[host]:port`, or hashed),
 * as `ssh-keygen -R` would; lines with lists or wildcards are left for a human.
 */
function removeHostLines(
  file: string,
  entries: KnownHostEntry[],
  hostString: string,
  host: string,
  port: number,
) {
  const own = entries.filter(
    (e) =>
      e.marker === null &&
      (e.hosts.kind === "hashed"
        ? knownHostKeyTypes([e], host, port).length > 0
        : e.hosts.patterns.length === 1 && e.hosts.patterns[0]?.toLowerCase() === hostString),
  );
  const drop = new Set(own.map((e) => e.line));
  const lines = readFileSync(file, "utf8").split("\n");
  writeFileSync(file, lines.filter((_line, index) => !drop.has(index + 1)).join("\n"), { mode: 0o600 });
  return own.length;
}

async function trust(name: string, flags: TrustFlags, global: GlobalOptions): Promise<number> {
  // With --json, stdout holds only the result line; the human lines go to stderr.
  const say = (line: string) => (global.json ? process.stderr : process.stdout).write(line);
  const config = readConfig(global);
  const found = findTrustTarget(config, name);
  if (!found) {
    process.stderr.write(
      `nexus trust: no server or jump host named "${name}" in ${config.file} (servers: ${config.servers.map((s) => s.name).join(", ")})\n`,
    );
    return EXIT.usage;
  }
  const { server, target } = found;
  const file = config.ssh.knownHosts;
  const hostString = hostPatternFor(target.host.toLowerCase(), target.port);
  const entries = readKnownHosts(file);
  // Ask for the key types already known, as a connection would, so "changed" compares like with like.
  const known = knownHostKeyTypes(entries, target.host, target.port);
  const key = await offeredKey(server, target, config, flags.replace ? undefined : known, hostString);
  if (!key) return EXIT.failed;
  const type = keyTypeOf(key);
  const fingerprint = fingerprintSha256(key);
  say(`${server.name} (${hostString}) host key: ${type} ${fingerprint}\n`);
  const done = (trusted: "already" | "added" | "replaced") => {
    if (global.json)
      printResult({
        command: "trust",
        server: server.name,
        host: hostString,
        keyType: type,
        fingerprint,
        trusted,
        knownHosts: file,
      });
    return EXIT.ok;
  };

  const check = checkHostKey(entries, target.host, target.port, key);
  if (check.status === "match") {
    say(`already trusted in ${file}\n`);
    return done("already");
  }
  if (check.status === "revoked") {
    process.stderr.write(`nexus trust: this key is marked @revoked in ${file}; it will not be trusted\n`);
    return EXIT.failed;
  }
  if (check.status === "changed") {
    process.stderr.write(
      [
        `HOST KEY CHANGED for ${hostString}: possible man-in-the-middle attack.`,
        ...check.expected.map((e) => `  known:   ${e.type} ${e.fingerprint} (${file}:${e.line})`),
        `  offered: ${type} ${fingerprint}`,
        "",
      ].join("\n"),
    );
    if (!flags.replace) {
      process.stderr.write(
        "  nexus will not trust it. If the server was really re-keyed (check the fingerprint with its\n" +
          `  admin: ssh-keygen -lf ${hostKeyFile(type)}), run \`${nexusCommand("trust", server.name, "--replace")}\`.\n`,
      );
      return EXIT.failed;
    }
  }
  const replacing = check.status === "changed" || (!!flags.replace && known.length > 0);
  if (!flags.yes && !(await confirmed(hostString, replacing))) return EXIT.failed;
  if (replacing) {
    const removed = replaceable(file, entries, hostString, target, key);
    if (removed === undefined) return EXIT.failed;
    say(`removed ${removed} old line(s) for ${hostString}\n`);
  }
  appendKnownHost(file, target.host, target.port, key);
  say(`added ${type} ${fingerprint} for ${hostString} to ${file}\n`);
  return done(replacing ? "replaced" : "added");
}

/**
 * A server by name, or a jump host as its proxyJump spells it ("bastion", "ops@bastion:2222")
 * or by its address: a jump host's key must be trusted before the servers behind it can be.
 */
function findTrustTarget(
  config: Config,
  name: string,
): { server: ServerConfig; target: SshTarget } | undefined {
  const text = readSshConfig(config.ssh.configFile);
  const server = config.servers.find((s) => s.name === name);
  if (server) return { server, target: resolveTarget(server, text) };
  for (const s of config.servers) {
    const hops = resolveTarget(s, text).hops;
    const index = hops.findIndex((h) => h.label === name || h.host === name);
    const hop = hops[index];
    if (!hop) continue;
    return {
      server: { ...s, name: hop.label, host: hop.host, port: hop.port, user: hop.user },
      target: { ...hop, hops: hops.slice(0, index), unhonoured: [] },
    };
  }
  return undefined;
}

/**
 * The server's host key, of a type known_hosts already has for it (`known`, unless --replace).
 * Undefined when it offers none of those: said on stderr.
 */
async function offeredKey(
  server: ServerConfig,
  target: ReturnType<typeof resolveTarget>,
  config: Config,
  known: string[] | undefined,
  hostString: string,
): Promise<Buffer | undefined> {
  const pinned = known ? hostKeyAlgorithms(known) : undefined;
  try {
    return await fetchHostKey(server, target, config, pinned?.length ? pinned : undefined);
  } catch (error) {
    if (pinned && error instanceof Error && /no matching host key format/.test(error.message)) {
      process.stderr.write(
        `nexus trust: ${hostString} offers none of the key types known_hosts has for it (${known?.join(", ")}).\n` +
          "  If the server was re-keyed (check with its admin), run again with --replace.\n",
      );
      return undefined;
    }
    throw error;
  }
}

/** On a terminal, the user's yes; without one, a refusal saying to use --yes. */
async function confirmed(hostString: string, replacing: boolean): Promise<boolean> {
  if (!process.stdin.isTTY) {
    process.stderr.write(
      `nexus trust: not a terminal; check the fingerprint on the server, then run again with --yes\n`,
    );
    return false;
  }
  const question = replacing
    ? `Replace the known key(s) of ${hostString} with this one? [y/N] `
    : `Trust this key for ${hostString}? Compare it with \`ssh-keygen -lf\` on the server first. [y/N] `;
  if (await confirm(question)) return true;
  process.stderr.write("not trusted\n");
  return false;
}

/**
 * The host's own lines removed from known_hosts: how many, or undefined (said on stderr) when
 * other keys for it remain on lines it shares with other hosts.
 */
function replaceable(
  file: string,
  entries: KnownHostEntry[],
  hostString: string,
  target: { host: string; port: number },
  key: Buffer,
): number | undefined {
  const removed = removeHostLines(file, entries, hostString, target.host, target.port);
  const after = checkHostKey(parseKnownHosts(readFileSync(file, "utf8")), target.host, target.port, key);
  if (after.status !== "changed") return removed;
  process.stderr.write(
    `nexus trust: ${file} still has other keys for ${hostString} on shared lines (${after.expected.map((e) => `line ${e.line}`).join(", ")}); edit them by hand\n`,
  );
  return undefined;
}

/** `nexus trust <server>`: shows the server's host key fingerprint and records it after confirmation. */
export function trustCommand(setExit: SetExit): Command {
  return new Command("trust")
    .argument("<server>", "a server name from the config, or a jump host as its proxyJump names it")
    .description("show a server's SSH host key fingerprint and add it to known_hosts after confirmation")
    .option("-y, --yes", "trust without asking (check the fingerprint out of band first)")
    .option("--replace", "replace a known key that changed (the server was re-keyed)")
    .addHelpText(
      "after",
      "\nExamples:\n  nexus trust nexus-alpha\n  nexus trust nexus-alpha --yes\n  nexus trust nexus-alpha --replace",
    )
    .action(
      action(
        setExit,
        ({ global }, name: string, flags: TrustFlags) => trust(name, flags, global),
        "nexus trust",
      ),
    );
}
