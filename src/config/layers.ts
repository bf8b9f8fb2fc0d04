import path from "node:path";

/**
 * Destinations (Kamal's convention): `nexus -d staging` reads `deploy.config.json`, then
 * `deploy.staging.json` beside it on top. Objects are merged key by key, anything else (arrays
 * such as `servers`, strings, numbers, null) is replaced whole by the overlay's value. Pure.
 */

/** A destination's name: it becomes part of a file name, a history line and a lock. */
const DESTINATION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Why a destination name is refused, or undefined when it is fine. */
export function destinationProblem(name: string): string | undefined {
  if (!DESTINATION_NAME.test(name))
    return `"${name}" is not a destination name (letters, digits, "-" and "_", starting with a letter or digit)`;
  // deploy.config.json is the base every destination shares.
  if (name === "config") return `"config" names the base file (deploy.config.json), not a destination`;
  return undefined;
}

/**
 * The overlay of a destination: `deploy.<name>.json` in the base config's directory, whatever the
 * base is called, so every nexus config file is named `deploy.*.json` (what `pack` leaves out of the
 * artifact). `baseDir`: the base file's directory (the current directory for `-c -`).
 */
export function destinationFile(baseDir: string, name: string): string {
  return path.join(baseDir, `deploy.${name}.json`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `overlay` on top of `base`: objects merged key by key, everything else replaced. */
export function mergeLayers(base: unknown, overlay: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(overlay)) return overlay === undefined ? base : overlay;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) merged[key] = mergeLayers(base[key], value);
  return merged;
}

/**
 * Which layer wrote the value at `at` in the merged data (index into `layers`, base first): the
 * topmost layer that has the path, unless an upper layer replaced an ancestor with a non-object
 * (then that one). A path no layer has (a required field left out) belongs to the topmost layer
 * that has its nearest ancestor, where a fix would go.
 */
export function ownerOf(layers: readonly unknown[], at: readonly PropertyKey[]): number {
  let candidates = layers.map((_, i) => i);
  let values: unknown[] = [...layers];
  for (const key of at) {
    const next: number[] = [];
    const nextValues: unknown[] = [];
    for (const i of candidates) {
      const parent = values[i];
      const value =
        isPlainObject(parent) || Array.isArray(parent)
          ? (parent as Record<PropertyKey, unknown>)[key as string]
          : undefined;
      if (value !== undefined) {
        next.push(i);
        nextValues[i] = value;
      }
    }
    if (next.length === 0) return candidates.at(-1) ?? 0;
    const top = next.at(-1) as number;
    // A non-object replaces everything below it: the rest of the path is that layer's alone.
    if (!isPlainObject(nextValues[top])) return top;
    candidates = next.filter((i) => isPlainObject(nextValues[i]));
    values = nextValues;
  }
  return candidates.at(-1) ?? 0;
}
