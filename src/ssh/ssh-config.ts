import { readFileSync } from "node:fs";
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
}

export interface SshConfigContext {
  /** The local home directory, for `~` and `%d`. */
  home: string;
  /** The local user name, for `%u`. */
  localUser: string;
}

/**
 * Resolves `host` against OpenSSH client config text with the `ssh-config` library: `Host`
 * blocks (patterns, negations, `Host *`) and `Match` blocks other than `Match exec` (never run:
 * a config file must not make nexus execute commands). Pure: no file or network access.
 */
export function resolveSshConfigHost(text: string, host: string, context: SshConfigContext): SshConfigHost {
  const alias = host.toLowerCase();
  const computed = SSHConfig.parse(text).compute(alias, { ignoreCase: true, matchExec: false });
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

  const hostName = first("hostname")?.replace(/%(%|h)/g, (_m, t: string) => (t === "%" ? "%" : alias));
  const portText = first("port");
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : undefined;
  const user = first("user");
  const remoteHost = hostName ?? alias;
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
  return {
    hostName,
    user,
    port: port !== undefined && port >= 1 && port <= 65535 ? port : undefined,
    identityFiles: [...new Set(identityFiles)],
  };
}

/** Reads the config file; a missing file is an empty config. */
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
