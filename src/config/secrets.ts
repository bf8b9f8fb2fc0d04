import type { Config } from "./load.js";

/** Env values taken from nexus's environment are masked from this length up (shorter ones would garble every line). */
const MIN_DECLARED = 4;
/** Other env values are masked from this length up: "true" or "3000" are no secrets. */
const MIN_PLAIN = 6;

/**
 * The env values of a config that must never be printed: every `fromEnv` value, and every other
 * env value that the config does not show in the clear anyway (a server's name, address, user or
 * deploy path). Longest first, so that a redactor replaces a value before any part of it.
 */
export function secretValues(config: Config): string[] {
  const shown = new Set<string>([config.app.name]);
  for (const s of config.servers)
    for (const value of [s.name, s.host, s.upstream, s.user, s.deployPath]) shown.add(value);
  const secrets = new Set<string>();
  for (const server of config.servers) {
    for (const [key, value] of Object.entries(server.env)) {
      if (server.secretKeys?.includes(key)) {
        if (value.length >= MIN_DECLARED) secrets.add(value);
      } else if (value.length >= MIN_PLAIN && !shown.has(value)) secrets.add(value);
    }
  }
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** Replaces each of `values` with *** in a text. */
export function masker(values: readonly string[]): (text: string) => string {
  const list = [...new Set(values)].filter((v) => v !== "").sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  const pattern = new RegExp(
    list.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"),
    "g",
  );
  return (text) => text.replace(pattern, "***");
}
