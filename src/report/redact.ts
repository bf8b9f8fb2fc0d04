import type { Config } from "../config/load.js";
import {
  MIN_SECRET_CHARS,
  type Redact,
  redactorFor,
  secretForms,
  secretValues,
  shownInClear,
} from "../config/secrets.js";
import { loadCredentials } from "../ssh/connect.js";

export { looksSecret, MIN_SECRET_CHARS, type Redact, redactorFor } from "../config/secrets.js";

/**
 * Replaces every configured secret with *** in what nexus prints: env values (verbatim, each line
 * of a multi-line value, and their JSON-escaped form as `pm2 jlist` prints them), the lines of
 * the private key and its passphrase. A value of 6 characters or more is masked anywhere; a
 * shorter one only when its key looks secret (TOKEN, PASSWORD, ...) or it is the passphrase, and
 * then only as a whole token: "true" or "3000" under PORT or DEBUG are no secrets. Which env
 * values are secrets, and which whatever their length, is `secretValues` (src/config/secrets.ts):
 * every `fromEnv` value is. `secretsOnly`: only those that are secrets whatever their length (from
 * the environment, or under a secret-looking key) and the key's: for everything nexus prints,
 * where masking a plain value such as NODE_ENV's "production" would garble paths and messages.
 */
export function secretRedactor(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  options: { secretsOnly?: boolean } = {},
): Redact {
  const shown = shownInClear(config);
  const long = new Set<string>();
  const short = new Set<string>();
  const add = (value: string, secretKey: boolean) => {
    for (const form of secretForms(value)) {
      if (form === "" || shown.has(form)) continue;
      if (form.length >= MIN_SECRET_CHARS) long.add(form);
      else if (secretKey) short.add(form);
    }
  };
  for (const { value, anyLength } of secretValues(config))
    if (anyLength || !options.secretsOnly) add(value, anyLength);
  try {
    const { privateKey, passphrase } = loadCredentials(config.ssh, env);
    for (const line of String(privateKey ?? "").split(/\r?\n/)) {
      if (!line.startsWith("-----")) add(line.trim(), false);
    }
    if (passphrase) add(passphrase, true);
  } catch {
    // An unreadable key fails the connection with its own message; nothing of it can be printed.
  }
  return redactorFor([...long], [...short]);
}

/** Every string in the value redacted (object keys kept); the value's shape unchanged. */
export function redactDeep<T>(value: T, redact: Redact): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, redact)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactDeep(item, redact);
    return out as T;
  }
  return value;
}

/** The app's error-log lines for a failed gate's report: blank lines dropped, secrets masked. */
export function redactedLogLines(config: Config, text: string): string[] {
  const redact = secretRedactor(config);
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => redact(line));
}
