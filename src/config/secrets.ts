import type { Config } from "./load.js";

/**
 * Env keys whose values are secrets however short they are ("PIN=1234"). Such a value is masked
 * only where it stands as a whole token, so a short secret does not garble every word holding it.
 */
const SECRET_KEY =
  /SECRET|TOKEN|PASSW|PASSPHRASE|PWD|PIN$|PRIVATE|CREDENTIAL|AUTH|API_?KEY|ACCESS_?KEY|SALT|SIGNING|COOKIE|SESSION|DSN|(^|_)KEY$/i;

/** A URL with a password in it (`postgres://app:pw@db/prod`): a secret under any key. */
export const CREDENTIAL_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i;

export function looksSecret(key: string): boolean {
  return SECRET_KEY.test(key);
}

export interface SecretValue {
  value: string;
  /** Masked however short it is: its key looks secret, or it came from the environment (`fromEnv`). */
  anyLength: boolean;
}

/** What the config shows in the clear anyway (names, addresses, ports): never a secret, never masked. */
export function shownInClear(config: Config): Set<string> {
  const shown = new Set<string>([config.app.name, String(config.app.port), String(config.health.port)]);
  // The destination's name is on the command line and in every history line (NODE_ENV=staging).
  if (config.destination) shown.add(config.destination);
  for (const s of config.servers) {
    for (const value of [s.name, s.host, s.upstream, s.user, s.deployPath]) shown.add(value);
    const port = /:(\d+)$/.exec(s.upstream)?.[1];
    if (port) shown.add(port);
  }
  return shown;
}

/**
 * The env values of a config that must never be printed: every value, except those the config
 * shows in the clear anyway (a server's name, host, user, upstream, deploy path). Every value read
 * with `{"fromEnv": …}` is a secret whatever its key. The one list every redactor starts from.
 */
export function secretValues(config: Config): SecretValue[] {
  const shown = shownInClear(config);
  const out = new Map<string, boolean>();
  for (const server of config.servers) {
    for (const [key, value] of Object.entries(server.env)) {
      if (value === "" || shown.has(value)) continue;
      const anyLength =
        looksSecret(key) || (server.secretKeys?.includes(key) ?? false) || CREDENTIAL_URL.test(value);
      out.set(value, (out.get(value) ?? false) || anyLength);
    }
  }
  // A webhook URL carries its own credential (Slack's path is the token): masked wherever it shows.
  for (const target of config.notify ?? []) if (target.url !== "") out.set(target.url, true);
  return [...out].map(([value, anyLength]) => ({ value, anyLength }));
}

export type Redact = (text: string) => string;

/** Values this long are masked wherever they appear, even inside a longer word. */
export const MIN_SECRET_CHARS = 6;

/** A value as it may appear in output: verbatim, JSON-escaped, and line by line. */
export function secretForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const lines = value.includes("\n") ? value.split(/\r?\n/).map((line) => line.trim()) : [];
  return [value, json, ...lines];
}

/** `long` values are masked anywhere, `short` ones only as whole tokens. */
export function redactorFor(long: readonly string[], short: readonly string[] = []): Redact {
  const byLength = (a: string, b: string) => b.length - a.length;
  const alternatives = [
    ...[...long].sort(byLength).map(regexLiteral),
    ...[...short].sort(byLength).map((value) => `(?<![A-Za-z0-9])${regexLiteral(value)}(?![A-Za-z0-9])`),
  ];
  if (alternatives.length === 0) return (text) => text;
  const pattern = new RegExp(alternatives.join("|"), "g");
  return (text) => text.replace(pattern, "***");
}

function regexLiteral(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
