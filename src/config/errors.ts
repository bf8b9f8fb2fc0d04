import type * as z from "zod";
import { EXIT, NexusError } from "../errors.js";

/** 1-based, as editors and GitHub annotations count. */
export interface ConfigLocation {
  line: number;
  column: number;
  /** The file it is in, when not the error's own (a destination's overlay, `deploy.staging.json`). */
  file?: string;
}

/**
 * A config mistake. Its message names the file and field, with the line and column where they are
 * known (`deploy.config.json:9:43: servers[1].port: expected a number…`); the CLI prints it
 * without a stack and exits 2.
 */
export class ConfigError extends NexusError {
  constructor(
    readonly file: string,
    readonly problems: string[],
    /** Parallel to `problems`: where each is in the file (config/positions.ts fills it in). */
    readonly locations: (ConfigLocation | undefined)[] = [],
  ) {
    super(problems.map((problem, i) => `${where(file, locations[i])}: ${problem}`).join("\n"), EXIT.usage);
  }
}

export function where(file: string, location: ConfigLocation | undefined): string {
  return location ? `${location.file ?? file}:${location.line}:${location.column}` : file;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(key))) out += out ? `.${String(key)}` : String(key);
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || "(top level)";
}

function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  const json = JSON.stringify(value);
  if (json === undefined) return String(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

const ARTICLE_TYPES = new Set(["number", "string", "boolean", "object", "array", "integer"]);
function withArticle(type: string): string {
  if (!ARTICLE_TYPES.has(type)) return type;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** Edits between two words, a swap of two neighbours counting as one ("prot" is 1 from "port"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= Math.max(2, Math.floor(candidate.length / 3)) && (!best || distance < best.distance)) {
      best = { candidate, distance };
    }
  }
  return best?.candidate;
}

/** Turns zod issues into "path: what is wrong" lines. `knownKeys` maps a path to the keys allowed there. */
export function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  knownKeys: (path: readonly PropertyKey[]) => string[],
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = formatPath(issue.path);
    switch (issue.code) {
      case "invalid_type": {
        const received = (issue as { input?: unknown }).input;
        lines.push(
          received === undefined
            ? `${path}: is required (expected ${withArticle(issue.expected)})`
            : `${path}: expected ${withArticle(issue.expected)}, received ${describeValue(received)}`,
        );
        break;
      }
      case "unrecognized_keys":
        for (const key of issue.keys) {
          const suggestion = closest(key, knownKeys(issue.path));
          const where = formatPath([...issue.path, key]);
          lines.push(`${where}: unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`);
        }
        break;
      case "invalid_value":
        lines.push(
          `${path}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, received ${describeValue((issue as { input?: unknown }).input)}`,
        );
        break;
      case "invalid_union": {
        const input = (issue as { input?: unknown }).input;
        const nested = issue.errors
          .flat()
          .find((inner) => inner.code === "custom" || inner.code === "invalid_format");
        lines.push(
          nested
            ? `${path}: ${nested.message}`
            : `${path}: ${issue.message.replace(/^Invalid input/, "invalid value")}, received ${describeValue(input)}`,
        );
        break;
      }
      case "too_small":
      case "too_big":
        lines.push(`${path}: ${humanBound(issue)}`);
        break;
      default:
        lines.push(`${path}: ${issue.message}`);
    }
  }
  return lines;
}

function humanBound(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const received = (issue as { input?: unknown }).input;
  if (issue.message && !issue.message.startsWith("Too ")) return issue.message;
  const direction = issue.code === "too_small" ? "at least" : "at most";
  const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
  const unit = issue.origin === "array" ? " item(s)" : issue.origin === "string" ? " character(s)" : "";
  return `expected ${direction} ${String(bound)}${unit}, received ${describeValue(received)}`;
}
