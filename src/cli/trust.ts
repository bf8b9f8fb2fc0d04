import { readFileSync, writeFileSync } from "node:fs";
import { Command } from "commander";
import { EXIT } from "../errors.js";
import { confirm } from "../setup/prompt.js";
import { hostKeyFile } from "../setup/run.js";
import { resolveTarget } from "../ssh/connect.js";
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
import { exitCodeForError, type GlobalOptions, readConfig } from "./context.js";
import { printResult } from "./result.js";

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
  const server = config.servers.find((s) => s.name === name);
  if (!server) {
    process.stderr.write(
      `nexus trust: no server named "${name}" in ${config.file} (servers: ${config.servers.map((s) => s.name).join(", ")})\n`,
    );
    return EXIT.usage;
  }
  const file = config.ssh.knownHosts;
  const target = resolveTarget(server, readSshConfig(config.ssh.configFile));
  const hostString = hostPatternFor(target.host.toLowerCase(), target.port);
  let entries = readKnownHosts(file);

  // Ask for the key types already known, as a connection would, so "changed" compares like with like.
  const known = knownHostKeyTypes(entries, target.host, target.port);
  const pinned = flags.replace ? undefined : hostKeyAlgorithms(known);
  let key: Buffer;
  try {
    key = await fetchHostKey(server, target, config, pinned?.length ? pinned : undefined);
  } catch (error) {
    if (pinned && error instanceof Error && /no matching host key format/.test(error.message)) {
      process.stderr.write(
        `nexus trust: ${hostString} offers none of the key types known_hosts has for it (${known.join(", ")}).\n` +
          "  If the server was re-keyed (check with its admin), run again with --replace.\n",
      );
      return EXIT.failed;
    }
    throw error;
  }
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
  const replacing = check.status === "changed" || (flags.replace && known.length > 0);
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
          `  admin: ssh-keygen -lf ${hostKeyFile(type)}), run \`nexus trust ${server.name} --replace\`.\n`,
      );
      return EXIT.failed;
    }
  }

  if (!flags.yes) {
    if (!process.stdin.isTTY) {
      process.stderr.write(
        `nexus trust: not a terminal; check the fingerprint on the server, then run again with --yes\n`,
      );
      return EXIT.failed;
    }
    const question = replacing
      ? `Replace the known key(s) of ${hostString} with this one? [y/N] `
      : `Trust this key for ${hostString}? Compare it with \`ssh-keygen -lf\` on the server first. [y/N] `;
    if (!(await confirm(question))) {
      process.stderr.write("not trusted\n");
      return EXIT.failed;
    }
  }

  if (replacing) {
    const removed = removeHostLines(file, entries, hostString, target.host, target.port);
    entries = parseKnownHosts(readFileSync(file, "utf8"));
    const after = checkHostKey(entries, target.host, target.port, key);
    if (after.status === "changed") {
      process.stderr.write(
        `nexus trust: ${file} still has other keys for ${hostString} on shared lines (${after.expected.map((e) => `line ${e.line}`).join(", ")}); edit them by hand\n`,
      );
      return EXIT.failed;
    }
    say(`removed ${removed} old line(s) for ${hostString}\n`);
  }
  appendKnownHost(file, target.host, target.port, key);
  say(`added ${type} ${fingerprint} for ${hostString} to ${file}\n`);
  return done(replacing ? "replaced" : "added");
}

/** `nexus trust <server>`: shows the server's host key fingerprint and records it after confirmation. */
export function trustCommand(setExit: (code: number) => void): Command {
  return new Command("trust")
    .argument("<server>", "a server name from the config")
    .description("show a server's SSH host key fingerprint and add it to known_hosts after confirmation")
    .option("-y, --yes", "trust without asking (check the fingerprint out of band first)")
    .option("--replace", "replace a known key that changed (the server was re-keyed)")
    .addHelpText(
      "after",
      "\nExamples:\n  nexus trust nexus-alpha\n  nexus trust nexus-alpha --yes\n  nexus trust nexus-alpha --replace",
    )
    .action(async (name: string, flags: TrustFlags, command: Command) => {
      try {
        setExit(await trust(name, flags, command.optsWithGlobals<GlobalOptions>()));
      } catch (error) {
        const { code, message } = exitCodeForError(error);
        process.stderr.write(`nexus trust: ${message}\n`);
        setExit(code);
      }
    });
}
