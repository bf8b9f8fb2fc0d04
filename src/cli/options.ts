import { InvalidArgumentError } from "commander";
import { parseDuration } from "../config/duration.js";

/** `--only a,b`: a comma-separated list of names. */
export function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `--lock-wait 30s`: a duration, in milliseconds. */
export function durationOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "30s" or "2m".');
  return ms;
}

/** `-n 50`: a number of lines. */
export function lineCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a number of lines.");
  return Number(value);
}

/** "Examples:" (or "Example:") and one indented line each: the end of every command's help. */
export function examples(...lines: string[]): string {
  return `\n${lines.length === 1 ? "Example" : "Examples"}:\n${lines.map((line) => `  ${line}`).join("\n")}`;
}
