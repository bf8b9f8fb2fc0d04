import { shq } from "../remote/quote.js";
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

// No single quotes inside: the script travels as one shell word. The URL comes on stdin.
const NODE_FETCH = [
  'const [file, seconds] = process.argv.slice(1), fs = require("fs");',
  'const fail = (m) => { console.error("nexus: download with node failed: " + m); process.exit(75); };',
  'setTimeout(() => fail("timed out"), Number(seconds) * 1000);',
  'let url = ""; process.stdin.on("data", (c) => { url += c; }).on("end", () => { url = url.trim();',
  'require(url.startsWith("https:") ? "https" : "http").get(url, (res) => {',
  '  if (res.statusCode !== 200) fail("HTTP " + res.statusCode);',
  "  const out = fs.createWriteStream(file);",
  '  res.on("error", (e) => fail(e.message)); out.on("error", (e) => fail(e.message));',
  '  res.on("aborted", () => fail("connection cut"));',
  '  res.pipe(out).on("finish", () => process.exit(0));',
  '}).on("error", (e) => fail(e.message)); });',
].join(" ");

/**
 * Each fetcher reads the URL from a pipe fed by the shell's builtin printf, so the URL (its token
 * is the only key to the artifact) is in no process's command line for `ps` to show.
 */
function fetchWith(fetcher: Fetcher, timeout: number): string {
  switch (fetcher) {
    case "curl":
      // -K -: curl reads options from stdin; fetchInput leaves no quote or backslash in the URL.
      return `printf 'url = "%s"\\n' "$url" | curl -fsS --connect-timeout 15 --max-time ${timeout} -o "$part" -K -`;
    case "wget":
      // wget's -T limits each read, not the whole download; timeout(1) bounds the rest when present.
      return `printf '%s\\n' "$url" | $limit wget -q -T 30 -O "$part" -i -`;
    case "node":
      return `printf '%s' "$url" | node -e ${shq(NODE_FETCH)} "$part" ${timeout}`;
  }
}

/** Whether the server has this fetcher; BusyBox's wget has no -i, so only GNU wget counts. */
function available(fetcher: Fetcher): string {
  const found = `command -v ${fetcher} >/dev/null 2>&1`;
  return fetcher === "wget" ? `${found} && wget --version >/dev/null 2>&1` : found;
}

/**
 * What the fetch command expects on stdin: the URL and a newline; quotes, backslashes and blanks
 * percent-encoded (the URL goes into curl's config syntax).
 */
export function fetchInput(url: string): string {
  return `${url.replace(/["\\\s]/g, (c) => encodeURIComponent(c))}\n`;
}

/**
 * The shell command a server runs to fetch the artifact from nexus's HTTP server, the URL read
 * from stdin (`fetchInput`), never from its command line: with curl,
 * wget or node (whichever it has, in that order) into `<dest>.part`; then its sha256 is checked
 * and only a matching file is renamed to `dest`. Exit 65: checksum mismatch (the file is
 * removed); 75: the download failed; 127: no fetcher.
 */
export function fetchCommand(input: FetchCommandInput): string {
  if (!/^[0-9a-f]{64}$/.test(input.sha256)) throw new Error(`not a sha256: ${input.sha256}`);
  const timeout = Math.max(1, Math.ceil(input.timeoutSeconds));
  const fetchers = input.fetchers ?? FETCHERS;
  const chain = fetchers
    .map(
      (fetcher, index) =>
        `${index === 0 ? "if" : "elif"} ${available(fetcher)}; then\n  fetcher=${fetcher}; ${fetchWith(fetcher, timeout)} || rc=$?`,
    )
    .join("\n");
  return [
    'IFS= read -r url || [ -n "$url" ]',
    `case "$url" in http://*|https://*) ;; *) echo "nexus: no artifact URL on stdin" >&2; exit ${FETCH_EXIT.download};; esac`,
    `dest=${shq(input.dest)}`,
    `part=${shq(`${input.dest}.part`)}`,
    `limit=""; if command -v timeout >/dev/null 2>&1; then limit="timeout ${timeout}"; fi`,
    'rm -f "$part"',
    "rc=0",
    chain,
    `else\n  echo ${shq(`nexus: this server has none of ${fetchers.join(", ")} to fetch the artifact over HTTP`)} >&2; exit ${FETCH_EXIT.noFetcher}\nfi`,
    `if [ "$rc" -ne 0 ]; then rm -f "$part"; echo "nexus: download with $fetcher failed (exit $rc)" >&2; exit ${FETCH_EXIT.download}; fi`,
    SHA256_FUNCTION,
    'actual=$(sha256 "$part")',
    `if [ "$actual" != ${shq(input.sha256)} ]; then rm -f "$part"; echo "checksum mismatch: expected ${input.sha256}, got $actual" >&2; exit ${FETCH_EXIT.checksum}; fi`,
    'mv -f "$part" "$dest"',
  ].join("\n");
}
