import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import SSHConfig from "ssh-config";
import { UsageError } from "../errors.js";

/** What `~/.ssh/config` says about one host, as `ssh` would compute it (first value wins). */
export interface SshConfigHost {
  hostName?: string;
  user?: string;
  port?: number;
  /** Tokens (%d, %h, %u, %r, %p, %n, %%) and `~` expanded; relative paths resolved against the cwd, as ssh does. */
  identityFiles: string[];
  /** The ProxyJump value as written (`none` included): a comma-separated chain of hops. */
  proxyJump?: string;
  /** Keywords that apply to this host and that nexus does not honour, as written in the file, with their first value. */
  unhonoured: UnhonouredSetting[];
}

export interface UnhonouredSetting {
  keyword: string;
  value: string;
}

/** What nexus does where ssh would read a keyword nexus does not honour. */
export interface NexusSshBehaviour {
  /** Unknown host keys refused (ssh.hostKeys "strict"). */
  strictHostKeys: boolean;
  /** ssh.knownHosts. */
  knownHosts: string;
  /** Keys from the agent are offered too. */
  usesAgent: boolean;
}

/**
 * Whether a keyword nexus does not honour asks for what nexus does anyway (then it is no news,
 * and not warned of): `StrictHostKeyChecking yes` under ssh.hostKeys "strict", `IdentitiesOnly
 * yes` with no agent in use, `UserKnownHostsFile` naming ssh.knownHosts (`samePath` compares).
 */
export function sameAsNexus(
  { keyword, value }: UnhonouredSetting,
  nexus: NexusSshBehaviour,
  samePath: (a: string, b: string) => boolean,
): boolean {
  switch (keyword.toLowerCase()) {
    case "stricthostkeychecking":
      return nexus.strictHostKeys && /^yes$/i.test(value);
    case "identitiesonly":
      return !nexus.usesAgent && /^yes$/i.test(value);
    case "userknownhostsfile":
      return value !== "" && !/\s/.test(value.trim()) && samePath(value.trim(), nexus.knownHosts);
    default:
      return false;
  }
}

export interface SshConfigContext {
  /** The local home directory, for `~` and `%d`. */
  home: string;
  /** The local user name, for `%u`. */
  localUser: string;
}

/** The keywords nexus reads; any other that applies to a host is named in a warning. */
export const HONOURED_KEYWORDS = [
  "Host",
  "Match",
  "Include",
  "HostName",
  "User",
  "Port",
  "IdentityFile",
  "ProxyJump",
];
const HONOURED = new Set(HONOURED_KEYWORDS.map((k) => k.toLowerCase()));

/**
 * Resolves `host` against OpenSSH client config text (its Includes followed, `expandIncludes`)
 * with the `ssh-config` library: `Host` blocks (patterns, negations, `Host *`)
 * and `Match` blocks other than `Match exec` (never run: a config file must not make nexus execute
 * commands). No file is read but those Include names; no network access.
 */
export function resolveSshConfigHost(text: string, host: string, context: SshConfigContext): SshConfigHost {
  // As ssh (checked against `ssh -G`): patterns match the host as given, case and all; only the
  // keywords (Host, HOST) are read in any case; the HostName it ends with is lowercased.
  const alias = host;
  const parsed = SSHConfig.parse(normalizeBlockKeywords(expandIncludes(text, alias, context.home)));
  // ignoreCase: the result's keys in lower case (the library matches patterns case-sensitively).
  const computed = parsed.compute(alias, { ignoreCase: true, matchExec: false });
  const first = (key: string): string | undefined => {
    const value = computed[key];
    const text = Array.isArray(value) ? value[0] : value;
    return text === undefined || text === "" ? undefined : text;
  };
  const all = (key: string): string[] => {
    const value = computed[key];
    if (value === undefined) return [];
    return Array.isArray(value) ? value : [value];
  };

  const hostName = first("hostname")
    ?.replace(/%(%|h)/g, (_m, t: string) => (t === "%" ? "%" : alias))
    .toLowerCase();
  const portText = first("port");
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined;
  const user = first("user");
  const remoteHost = hostName ?? alias.toLowerCase();
  const tokens: Record<string, string> = {
    "%": "%",
    d: context.home,
    h: remoteHost,
    n: alias,
    p: String(port ?? 22),
    r: user ?? context.localUser,
    u: context.localUser,
  };
  const identityFiles = all("identityfile")
    .filter((file) => file.toLowerCase() !== "none")
    .map((file) => {
      const expanded = file.replace(/%([%dhnpru])/g, (match, t: string) => tokens[t] ?? match);
      if (expanded === "~") return context.home;
      if (expanded.startsWith("~/")) return path.join(context.home, expanded.slice(2));
      return path.resolve(expanded);
    });
  const proxyJump = first("proxyjump");
  return {
    hostName,
    user,
    port: port !== undefined && port >= 1 && port <= 65535 ? port : undefined,
    identityFiles: [...new Set(identityFiles)],
    ...(proxyJump !== undefined ? { proxyJump } : {}),
    unhonoured: unhonouredKeywords(parsed, Object.keys(computed)).map(({ keyword, key }) => ({
      keyword,
      value: first(key) ?? "",
    })),
  };
}

/** `HOST x` and `match=…` as the library reads them: `Host x`, `Match …` (ssh takes keywords in any case). */
function normalizeBlockKeywords(text: string): string {
  return text.replace(
    /^(\s*)(host|match)(\s*=\s*|\s+)/gim,
    (_m, indent: string, keyword: string) =>
      `${indent}${keyword.toLowerCase() === "host" ? "Host" : "Match"} `,
  );
}

/** The computed keys nexus does not read (`key`), spelled as the file spells them (`keyword`). */
function unhonouredKeywords(
  parsed: ReturnType<typeof SSHConfig.parse>,
  keys: string[],
): { keyword: string; key: string }[] {
  const spelling = new Map<string, string>();
  const walk = (lines: ReturnType<typeof SSHConfig.parse>) => {
    for (const line of lines) {
      if (!("param" in line)) continue;
      spelling.set(line.param.toLowerCase(), spelling.get(line.param.toLowerCase()) ?? line.param);
      if ("config" in line && Array.isArray(line.config)) walk(line.config as typeof lines);
    }
  };
  walk(parsed);
  return keys.filter((key) => !HONOURED.has(key)).map((key) => ({ keyword: spelling.get(key) ?? key, key }));
}

/** OpenSSH stops following Include this deep (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;

/** Reads the config file (its Includes are followed when a host is resolved); a missing file is an empty config. */
export function readSshConfig(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "";
    if (code) throw new UsageError(`ssh.configFile: cannot read ${file} (${code})`);
    throw error;
  }
}

/**
 * The config text for one host with its `Include`s followed as ssh follows them: each pattern
 * (several per line, globs, `~`) names files read in place, in lexical order; a relative
 * pattern is relative to `~/.ssh`; a file that does not exist is skipped. An Include inside a
 * `Host`/`Match` block that does not match the host reads nothing (OpenSSH's NEVERMATCH). The
 * including block's own line comes again after the files' text, so that what follows the Include
 * still belongs to that block (an included file's blocks end with it).
 */
export function expandIncludes(text: string, host: string, home: string, depth = 0): string {
  if (!/^\s*include(?:\s|=)/im.test(text)) return text;
  const out: string[] = [];
  // The Host or Match line of the block being read (top level: every host).
  let block: string | undefined;
  for (const line of text.split("\n")) {
    const directive = /^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(line);
    const keyword = directive?.[1]?.toLowerCase();
    if (keyword === "host" || keyword === "match") block = line.trim();
    if (keyword !== "include" || !directive?.[2]) {
      out.push(line);
      continue;
    }
    out.push(`# ${line.trim()}`);
    if (block !== undefined && !blockMatches(block, host)) continue;
    if (depth >= MAX_INCLUDE_DEPTH)
      throw new UsageError(`ssh.configFile: Include nested more than ${MAX_INCLUDE_DEPTH} deep`);
    for (const pattern of splitWords(directive[2])) {
      for (const included of globFiles(includePath(pattern, home))) {
        let body: string;
        try {
          body = readFileSync(included, "utf8");
        } catch {
          continue;
        }
        out.push(expandIncludes(body, host, home, depth + 1));
      }
    }
    out.push(block ?? "Host *");
  }
  return out.join("\n");
}

/** Whether a `Host`/`Match` line applies to the host (the library decides, on a block of one probe directive). */
function blockMatches(header: string, host: string): boolean {
  const probe = SSHConfig.parse(normalizeBlockKeywords(`${header}\n  NexusProbe yes\n`)).compute(host, {
    ignoreCase: true,
    matchExec: false,
  });
  return probe.nexusprobe === "yes";
}

/** Words of a directive's value: whitespace-separated, double quotes grouping. */
function splitWords(value: string): string[] {
  return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? "").filter(Boolean);
}

function includePath(pattern: string, home: string): string {
  if (pattern === "~") return home;
  if (pattern.startsWith("~/")) return path.join(home, pattern.slice(2));
  if (path.isAbsolute(pattern)) return pattern;
  return path.join(home, ".ssh", pattern);
}

/** The files a glob(7) pattern names, sorted; `*`, `?` and `[...]` in any segment, no dotfiles unless asked. */
export function globFiles(pattern: string): string[] {
  const segments = pattern.split("/");
  let paths = [segments[0] === "" ? "/" : (segments[0] ?? "")];
  for (const segment of segments.slice(1)) {
    if (segment === "") continue;
    const next: string[] = [];
    for (const dir of paths) {
      if (!/[*?[]/.test(segment)) {
        next.push(path.join(dir, segment));
        continue;
      }
      const matcher = globSegment(segment);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        if (name.startsWith(".") && !segment.startsWith(".")) continue;
        if (matcher.test(name)) next.push(path.join(dir, name));
      }
    }
    paths = next;
  }
  return paths.filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

function globSegment(segment: string): RegExp {
  let source = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[") {
      const end = segment.indexOf("]", i + 2);
      if (end < 0) source += "\\[";
      else {
        const body = segment
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
