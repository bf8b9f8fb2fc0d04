/**
 * The `nexus` Nginx log format, defined once: `nexus nginx-config` prints it, the sandbox logs in
 * it, the preflight looks for it and the parser reads it. Only its tail matters to nexus: the
 * upstream fields come last, keyed, so a line is read from its end whatever precedes them.
 */
export const LOG_FORMAT_NAME = "nexus";

/** The fields the watch needs, in the order and with the keys the parser expects. */
export const LOG_FORMAT_TAIL =
  "upstream=$upstream_addr upstream_status=$upstream_status upstream_time=$upstream_response_time";

const LOG_FORMAT_PARTS = [
  '$remote_addr [$time_local] "$request" $status $body_bytes_sent request_time=$request_time ',
  LOG_FORMAT_TAIL,
];

/** The `log_format nexus ...;` directive for the http block, one quoted part per line. */
export function logFormatDirective(indent = ""): string {
  const head = `${indent}log_format ${LOG_FORMAT_NAME} `;
  return LOG_FORMAT_PARTS.map((part, i) => `${i === 0 ? head : " ".repeat(head.length)}'${part}'`)
    .join("\n")
    .concat(";");
}

/** `access_log <path> nexus;` */
export function accessLogDirective(path: string, indent = ""): string {
  return `${indent}access_log ${path} ${LOG_FORMAT_NAME};`;
}

/** What to add to the http block, for messages and `nexus nginx-config`. */
export function logFormatAdvice(path: string): string {
  return `${logFormatDirective()}\n${accessLogDirective(path)}`;
}

/** The variables a compatible format must carry, for messages. */
export const REQUIRED_VARIABLES = ["$upstream_addr", "$upstream_status", "$upstream_response_time"];

export interface DumpFinding {
  /** Names of log formats whose definition ends with the nexus tail (and escapes what clients send). */
  compatibleFormats: string[];
  /** access_log directives as [path, format]. */
  accessLogs: [string, string][];
  /** Names of log formats with `escape=none`: a client's newline would forge whole lines. */
  unescapedFormats: string[];
}

/** Reads `log_format` and `access_log` directives out of `nginx -T` output (comments dropped). */
export function scanNginxDump(dump: string): DumpFinding {
  const text = dump
    .split("\n")
    .map((line) => line.replace(/(^|\s)#.*$/, "$1"))
    .join("\n");
  const compatibleFormats: string[] = [];
  const unescapedFormats: string[] = [];
  const formatPattern = /\blog_format\s+(\S+)\s+(?:escape=(\S+)\s+)?((?:'[^']*'\s*|"[^"]*"\s*)+);/g;
  for (const match of text.matchAll(formatPattern)) {
    const body = [...(match[3] ?? "").matchAll(/'([^']*)'|"([^"]*)"/g)]
      .map((m) => m[1] ?? m[2] ?? "")
      .join("");
    // escape=none writes a client's newline as is: a header could then forge a whole line.
    if (match[2] === "none") {
      unescapedFormats.push(match[1] as string);
      continue;
    }
    if (body.trimEnd().endsWith(LOG_FORMAT_TAIL)) compatibleFormats.push(match[1] as string);
  }
  const accessLogs: [string, string][] = [];
  for (const match of text.matchAll(/\baccess_log\s+([^\s;]+)(?:\s+([^\s;]+))?[^;]*;/g)) {
    accessLogs.push([match[1] as string, match[2] ?? "combined"]);
  }
  return { compatibleFormats, accessLogs, unescapedFormats };
}

/**
 * Whether the dump writes `path` in a compatible format. A relative access_log path (relative
 * to Nginx's prefix) matches a configured absolute path that ends with it.
 */
export function dumpLogsInNexusFormat(finding: DumpFinding, path: string): boolean {
  return finding.accessLogs.some(
    ([file, format]) => finding.compatibleFormats.includes(format) && samePath(file, path),
  );
}

/** Whether the dump writes `path` with a format that has `escape=none`. */
export function dumpLogsUnescaped(finding: DumpFinding, path: string): boolean {
  return finding.accessLogs.some(
    ([file, format]) => finding.unescapedFormats.includes(format) && samePath(file, path),
  );
}

/** An access_log path relative to Nginx's prefix matches a configured absolute path ending with it. */
function samePath(file: string, path: string): boolean {
  return file === path || (!file.startsWith("/") && path.endsWith(`/${file.replace(/^\.\//, "")}`));
}
