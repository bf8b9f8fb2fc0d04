import { shq } from "../remote/quote.js";
import { SHA256_FUNCTION } from "../remote/sha256.js";

export type Fetcher = "curl" | "wget" | "node";

export const FETCHERS: readonly Fetcher[] = ["curl", "wget", "node"];

/** Exit codes of the fetch command, beyond the fetchers' own. */
export const FETCH_EXIT = { checksum: 65, download: 75, noFetcher: 127 } as const;

export interface FetchCommandInput {
  url: string;
  /** Final path of the archive on the server; the download goes to `<dest>.part` first. */
  dest: string;
  sha256: string;
  /** Whole-download limit. */
  timeoutSeconds: number;
  /** Tried in this order: the first one the server has is used. */
  fetchers?: readonly Fetcher[];
}

// No single quotes inside: the script travels as one shell word.
const NODE_FETCH = [
  'const [url, file] = process.argv.slice(1), fs = require("fs"), timeout = Number(process.argv[3]) * 1000;',
  'const fail = (m) => { console.error("nexus: download with node failed: " + m); process.exit(75); };',
  'setTimeout(() => fail("timed out"), timeout);',
  'require(url.startsWith("https:") ? "https" : "http").get(url, (res) => {',
  '  if (res.statusCode !== 200) fail("HTTP " + res.statusCode);',
  "  const out = fs.createWriteStream(file);",
  '  res.on("error", (e) => fail(e.message)); out.on("error", (e) => fail(e.message));',
  '  res.on("aborted", () => fail("connection cut"));',
  '  res.pipe(out).on("finish", () => process.exit(0));',
  '}).on("error", (e) => fail(e.message));',
].join(" ");

function fetchWith(fetcher: Fetcher, timeout: number): string {
  switch (fetcher) {
    case "curl":
      return `curl -fsS --connect-timeout 15 --max-time ${timeout} -o "$part" "$url"`;
    case "wget":
      // wget's -T limits each read, not the whole download; timeout(1) bounds the rest when present.
      return `$limit wget -q -T 30 -O "$part" "$url"`;
    case "node":
      return `node -e ${shq(NODE_FETCH)} "$url" "$part" ${timeout}`;
  }
}

/**
 * The shell command a server runs to fetch the artifact from nexus's HTTP server: with curl,
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
        `${index === 0 ? "if" : "elif"} command -v ${fetcher} >/dev/null 2>&1; then\n  fetcher=${fetcher}; ${fetchWith(fetcher, timeout)} || rc=$?`,
    )
    .join("\n");
  return [
    `url=${shq(input.url)}`,
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
