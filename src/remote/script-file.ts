import { readFileSync } from "node:fs";
import { shq } from "./quote.js";

/**
 * The text of a script kept in a file beside the module that uses it: a remote shell script
 * (`.sh`, read by ShellCheck and run under `sh` in the unit tier) or a Node program run on a
 * server (`.cjs`, read by the linter and, through its JSDoc types, by the type checker).
 *
 * Written exactly `scriptFile(import.meta.url, "name.sh")`, with a literal name: the single-file
 * bundle replaces each such call with the file's text (scripts/bundle.mjs), and `npm run build`
 * copies the files into dist/ beside the compiled modules (scripts/copy-scripts.mjs).
 */
export function scriptFile(moduleUrl: string, name: string): string {
  return readFileSync(new URL(name, moduleUrl), "utf8");
}

/**
 * A script whose text calls shell functions kept in files of their own (`sha256`, `uptime_cs`):
 * the functions first, then the script. Each part is a file ShellCheck reads; the whole is what runs.
 */
export function withFunctions(script: string, ...functions: string[]): string {
  return [...functions.map((text) => text.trimEnd()), script].join("\n");
}

/**
 * A script that runs a Node program on the server (`exec node -e "${program:?}" …`): the program's
 * text set first, quoted as one shell word, then the script. The whole stays a constant text.
 */
export function withProgram(script: string, program: string): string {
  return `program=${shq(program)}\n${script}`;
}
