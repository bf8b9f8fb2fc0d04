import { scriptFile } from "../remote/script-file.js";

/**
 * The check scripts print `key=value` lines, and multi-line outputs between `@@<name>` and
 * `@@end` lines; this reads them back.
 */
export interface Facts {
  values: Map<string, string>;
  sections: Map<string, string>;
}

export function parseFacts(stdout: string): Facts {
  const values = new Map<string, string>();
  const sections = new Map<string, string>();
  let section: string | undefined;
  let lines: string[] = [];
  for (const line of stdout.split("\n")) {
    if (section !== undefined) {
      if (line === "@@end") {
        sections.set(section, lines.join("\n").trim());
        section = undefined;
        lines = [];
      } else lines.push(line);
      continue;
    }
    const start = /^@@([a-z_]+)$/.exec(line);
    if (start) {
      section = start[1] as string;
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && /^[a-z0-9_]+$/.test(line.slice(0, eq))) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  if (section !== undefined) sections.set(section, lines.join("\n").trim());
  return { values, sections };
}

/** `say KEY VALUE`: the shell function the check scripts print their facts with. */
export const SAY_FUNCTION = scriptFile(import.meta.url, "say.sh");
