import { script } from "../remote/op.js";
import { scriptFile, withFunctions, withProgram } from "../remote/script-file.js";
import { SHA256_FUNCTION } from "../remote/sha256.js";

export type Fetcher = "curl" | "wget" | "node";

export const FETCHERS: readonly Fetcher[] = ["curl", "wget", "node"];

/** Exit codes of the fetch command, beyond the fetchers' own. */
export const FETCH_EXIT = { checksum: 65, download: 75, noFetcher: 127 } as const;

export interface FetchCommandInput {
  /** Final path of the archive on the server; the download goes to `<dest>.part` first. */
  dest: string;
  sha256: string;
  /** Whole-download limit. */
  timeoutSeconds: number;
  /** Tried in this order: the first one the server has is used. */
  fetchers?: readonly Fetcher[];
}

/**
 * $1 the archive's final path (the download goes to `$1.part` first), $2 its sha256, $3 the
 * whole download's limit in seconds, $4… the fetchers to try, in order: the first one the server
 * has is used. The URL comes on stdin (`fetchInput`), never on a command line.
 */
export const FETCH_SCRIPT = withProgram(
  withFunctions(scriptFile(import.meta.url, "fetch.sh"), SHA256_FUNCTION),
  scriptFile(import.meta.url, "node-fetch.cjs"),
);

/**
 * What the fetch command expects on stdin: the URL and a newline; quotes, backslashes and blanks
 * percent-encoded (the URL goes into curl's config syntax).
 */
export function fetchInput(url: string): string {
  return `${url.replace(/["\\\s]/g, (c) => encodeURIComponent(c))}\n`;
}

/**
 * The shell command a server runs to fetch the artifact from nexus's HTTP server, the URL read
 * from stdin (`fetchInput`), never from its command line: with curl, wget or node (whichever it
 * has, in that order) into `<dest>.part`; then its sha256 is checked and only a matching file is
 * renamed to `dest`. Exit 65: checksum mismatch (the file is removed); 75: the download failed;
 * 127: no fetcher.
 */
export function fetchCommand(input: FetchCommandInput): string {
  if (!/^[0-9a-f]{64}$/.test(input.sha256)) throw new Error(`not a sha256: ${input.sha256}`);
  const timeout = Math.max(1, Math.ceil(input.timeoutSeconds));
  return script(FETCH_SCRIPT, input.dest, input.sha256, timeout, ...(input.fetchers ?? FETCHERS));
}
