import { nexusCommand } from "../../config/invocation.js";
import { NexusError } from "../../errors.js";

/**
 * Reads and edits `server` directives of Nginx `upstream` blocks without
 * reformatting: edits are splices at exact byte offsets, so comments,
 * indentation, line endings and every other directive stay untouched.
 *
 * The file is either a servers file (only `server` lines, included inside an
 * `upstream` block of a root-owned config: the recommended layout, see
 * `renderServersFile`) or holds whole `upstream` blocks (included in `http`).
 */

export interface UpstreamServer {
  /** Name of the enclosing `upstream` block. */
  upstream: string;
  address: string;
  down: boolean;
  /** 1-based line of the `server` keyword. */
  line: number;
  /** Parameters after the address, e.g. `["weight=2", "max_fails=3", "down"]`. */
  params: string[];
}

export type LbMethod = "least_conn" | "round_robin" | "ip_hash";

export interface UpstreamBlockOptions {
  name: string;
  /** Backend addresses, e.g. `127.0.0.11:3000`. */
  servers: string[];
  /** Defaults to `least_conn`; `round_robin` is Nginx's default and emits no directive. */
  lbMethod?: LbMethod;
  maxFails?: number;
  failTimeout?: string;
  /** Idle keepalive connections per worker; 0 omits the directive. */
  keepalive?: number;
}

export class UpstreamEditError extends NexusError {
  constructor(
    message: string,
    readonly address: string,
    /** Names of all `upstream` blocks in the file. */
    readonly upstreams: string[],
  ) {
    super(message);
  }
}

/** `server ADDRESS [params...];` directives in `upstream` blocks (only `upstreamName`'s when given). */
export function listUpstreamServers(text: string, upstreamName?: string): UpstreamServer[] {
  return parseServers(text, upstreamName).map(({ upstream, address, down, line, params }) => ({
    upstream,
    address,
    down,
    line,
    params: params.map((param) => param.value),
  }));
}

/**
 * Marks the server with exactly `address` as down (appends a ` down` parameter)
 * or enables it (removes `down`). Only that directive's bytes change; setting
 * the state it already has returns the text unchanged with `changed: false`.
 * Throws `UpstreamEditError` unless the address occurs exactly once in the
 * selected upstream block(s).
 */
export function setServerDown(
  text: string,
  address: string,
  down: boolean,
  upstreamName?: string,
): { text: string; changed: boolean } {
  const server = findOne(text, address, upstreamName);
  if (server.down === down) return { text, changed: false };
  if (down) {
    return { text: splice(text, server.lastWordEnd, server.lastWordEnd, " down"), changed: true };
  }
  let edited = text;
  // Right to left so earlier offsets stay valid.
  for (const param of [...server.params].reverse()) {
    if (param.value !== "down") continue;
    const [start, end] = removalRange(edited, param.start, param.end);
    edited = splice(edited, start, end, "");
  }
  return { text: edited, changed: true };
}

/**
 * Moves the server with exactly `address` to `to` (the surge strategy's port switch): only the
 * address word changes; its parameters (`down` included) stay. Throws `UpstreamEditError` unless
 * `address` occurs exactly once in the selected block(s), or when `to` is listed there already.
 */
export function setServerAddress(
  text: string,
  address: string,
  to: string,
  upstreamName?: string,
): { text: string; changed: boolean } {
  assertWord(to, "server address");
  if (address === to) {
    findOne(text, address, upstreamName);
    return { text, changed: false };
  }
  const server = findOne(text, address, upstreamName);
  if (parseServers(text, upstreamName).some((other) => other.address === to)) {
    throw new UpstreamEditError(
      `Server ${to} is already listed: cannot move ${address} there`,
      address,
      upstreamNames(text),
    );
  }
  return {
    text: splice(text, server.addressWord.start, server.addressWord.end, to),
    changed: true,
  };
}

/** The one `server` directive with exactly `address` in the selected block(s). */
function findOne(text: string, address: string, upstreamName?: string): ParsedServer {
  const upstreams = upstreamNames(text);
  const where =
    upstreamName === undefined ? `any upstream block` : `upstream ${JSON.stringify(upstreamName)}`;
  const inFile = `upstream blocks in file: ${upstreams.length > 0 ? upstreams.join(", ") : "none"}`;
  // A servers file names no upstream: the block that includes it is in another file.
  if (upstreamName !== undefined && upstreams.length > 0 && !upstreams.includes(upstreamName)) {
    throw new UpstreamEditError(
      `No upstream ${JSON.stringify(upstreamName)} (${inFile})`,
      address,
      upstreams,
    );
  }

  const matches = parseServers(text, upstreamName).filter((server) => server.address === address);
  const [server] = matches;
  if (server === undefined) {
    throw new UpstreamEditError(`Server ${address} not found in ${where} (${inFile})`, address, upstreams);
  }
  if (matches.length > 1) {
    const places = matches.map((match) => `${match.upstream} line ${match.line}`).join(", ");
    throw new UpstreamEditError(
      `Server ${address} appears ${matches.length} times in ${where} (${places}); ` +
        `name the upstream to edit (${inFile})`,
      address,
      upstreams,
    );
  }
  return server;
}

/** Why an upstream file that holds whole `upstream` blocks is a risk, for `nexus check` and `setup`. */
export const UPSTREAM_BLOCK_RISK =
  "the upstream file holds the whole upstream block, so Nginx includes it in the http block, where whoever may write it (the deploy user) can add any directive Nginx runs as root (a log file written where they choose, for one).";
/** The layout that closes it. */
export function serversFileFix(): string {
  return `keep only its server lines in it and include it inside the upstream block of a root-owned file (\`${nexusCommand("nginx-config")}\` prints both), then test and reload Nginx`;
}

/** True when the file holds whole `upstream` blocks (so it is included in `http`), not only server lines. */
export function holdsUpstreamBlock(text: string): boolean {
  return upstreamNames(text).length > 0;
}

/** The block's servers: listed in it, or in a servers file (`renderServersFile`) it includes. */
export type UpstreamBlockInput = Omit<UpstreamBlockOptions, "servers"> &
  ({ servers: string[] } | { include: string });

/** The recommended upstream block for nexus, ending with a newline. */
export function renderUpstreamBlock(options: UpstreamBlockInput): string {
  const { name, lbMethod = "least_conn", keepalive = 32 } = options;
  assertWord(name, "upstream name");
  if (!Number.isInteger(keepalive) || keepalive < 0) throw new Error(`Invalid keepalive: ${keepalive}`);
  const lines = [`upstream ${name} {`];
  if (lbMethod !== "round_robin") lines.push(`    ${lbMethod};`);
  if ("include" in options) {
    assertWord(options.include, "included file");
    lines.push(`    include ${options.include};`);
  } else lines.push(...serverLines(options).map((line) => `    ${line}`));
  if (keepalive > 0) lines.push(`    keepalive ${keepalive};`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/**
 * The servers file: nothing but `server` lines, for an `include` inside the upstream block. The
 * deploy user may write this file, and Nginx (as root) reads it there, where only upstream
 * directives are accepted; a file included in `http` could hold any directive (a log written as
 * root where the writer chooses).
 */
export function renderServersFile(options: Omit<UpstreamBlockOptions, "name">): string {
  return `${serverLines(options).join("\n")}\n`;
}

function serverLines(options: Omit<UpstreamBlockOptions, "name">): string[] {
  const { servers, maxFails = 3, failTimeout = "30s" } = options;
  if (servers.length === 0) throw new Error("an upstream needs at least one server");
  for (const server of servers) assertWord(server, "server address");
  assertWord(failTimeout, "fail_timeout");
  if (!Number.isInteger(maxFails) || maxFails < 0) throw new Error(`Invalid max_fails: ${maxFails}`);
  return servers.map((server) => `server ${server} max_fails=${maxFails} fail_timeout=${failTimeout};`);
}

/**
 * Recommended directives for `location / { ... }` proxying to upstream `name`,
 * one per line, each prefixed with `indent`, ending with a newline.
 */
export function renderProxySettings(name: string, indent = "    "): string {
  assertWord(name, "upstream name");
  const directives = [
    `proxy_pass http://${name};`,
    // HTTP/1.1 with an empty Connection header lets `keepalive` reuse upstream connections; a
    // WebSocket's upgrade passes through (renderUpgradeMap: "upgrade" only when the client asks).
    "proxy_http_version 1.1;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $nexus_connection_upgrade;",
    "proxy_set_header Host $host;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_next_upstream error timeout http_502 http_503;",
    "proxy_next_upstream_tries 3;",
    "proxy_next_upstream_timeout 10s;",
    "proxy_connect_timeout 2s;",
  ];
  return directives.map((directive) => `${indent}${directive}\n`).join("");
}

/**
 * The `map` (http block) behind renderProxySettings' Connection header: "upgrade" for a client
 * that asks for a WebSocket, else empty, which keeps upstream connections reusable.
 */
export function renderUpgradeMap(indent = ""): string {
  return ["map $http_upgrade $nexus_connection_upgrade {", "    default upgrade;", "    '' '';", "}"]
    .map((line) => `${indent}${line}\n`)
    .join("");
}

/**
 * Recommended directives for the `server` block, with the comment that says why: a client
 * connection that has not sent its request yet (a browser's preconnect) keeps the Nginx worker
 * that accepted it alive after a reload, with the old server list, and a drain waits for those
 * workers (docs/balancers.md): `client_header_timeout` bounds that wait. At most the drain timeout.
 */
export function renderServerSettings(drainTimeoutMs: number): string {
  const seconds = Math.max(1, Math.floor(Math.min(10_000, drainTimeoutMs) / 1000));
  return [
    `# a connection that has not sent its request holds a drain at most this long (<= balancer.drainTimeout)`,
    `client_header_timeout ${seconds}s;`,
    "",
  ].join("\n");
}

interface Word {
  value: string;
  start: number;
  end: number;
}

type Token = { kind: "word"; word: Word } | { kind: ";" | "{" | "}"; start: number };

interface ParsedServer {
  upstream: string;
  address: string;
  down: boolean;
  line: number;
  params: Word[];
  lastWordEnd: number;
  addressWord: Word;
}

function parseServers(text: string, upstreamName?: string): ParsedServer[] {
  const servers: ParsedServer[] = [];
  const serversFile = isServersFile(text);
  forEachDirective(text, (words, enclosing) => {
    const [keyword, address, ...params] = words;
    if (keyword?.value !== "server" || address === undefined) return;
    const upstream = enclosing.at(-1);
    // At the top of a servers file: the upstream block is the one that includes it.
    const topLevel = enclosing.length === 0;
    if (topLevel && !serversFile) return;
    if (!topLevel && (upstream?.[0]?.value !== "upstream" || upstream.length !== 2)) return;
    const name = topLevel ? (upstreamName ?? "") : (upstream?.[1]?.value ?? "");
    if (upstreamName !== undefined && name !== upstreamName) return;
    servers.push({
      upstream: name,
      address: address.value,
      down: params.some((param) => param.value === "down"),
      line: lineOf(text, keyword.start),
      params,
      lastWordEnd: (params.at(-1) ?? address).end,
      addressWord: address,
    });
  });
  return servers;
}

/** No block at all: the file is included inside an upstream block (only its directives can be). */
function isServersFile(text: string): boolean {
  let blocks = 0;
  forEachDirective(
    text,
    () => {},
    () => {
      blocks++;
    },
  );
  return blocks === 0;
}

function upstreamNames(text: string): string[] {
  const names: string[] = [];
  forEachDirective(
    text,
    () => {},
    (header) => {
      if (header[0]?.value === "upstream" && header.length === 2 && header[1] !== undefined) {
        names.push(header[1].value);
      }
    },
  );
  return names;
}

/**
 * Calls `onDirective` for each `;`-terminated directive with the headers of
 * its enclosing blocks (outermost first), and `onBlock` for each block header.
 * Unbalanced braces are tolerated rather than rejected.
 */
function forEachDirective(
  text: string,
  onDirective: (words: Word[], enclosing: Word[][]) => void,
  onBlock: (header: Word[]) => void = () => {},
): void {
  const stack: Word[][] = [];
  let words: Word[] = [];
  for (const token of tokenize(text)) {
    if (token.kind === "word") {
      words.push(token.word);
    } else if (token.kind === ";") {
      if (words.length > 0) onDirective(words, stack);
      words = [];
    } else if (token.kind === "{") {
      onBlock(words);
      stack.push(words);
      words = [];
    } else {
      stack.pop();
      words = [];
    }
  }
}

/** Nginx's lexical rules: `#` comments at word start, quoted strings, `;`, `{` and `}`. */
function* tokenize(text: string): Generator<Token> {
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === " " || ch === "\t" || ch === "\r" || ch === "\n") {
      i++;
    } else if (ch === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (ch === ";" || ch === "{" || ch === "}") {
      yield { kind: ch, start: i };
      i++;
    } else if (ch === '"' || ch === "'") {
      const start = i;
      let value = "";
      i++;
      while (i < text.length && text[i] !== ch) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      i++;
      yield { kind: "word", word: { value, start, end: Math.min(i, text.length) } };
    } else {
      const start = i;
      while (i < text.length && !/[\s;{}]/.test(text[i] ?? "")) {
        // `${var}` keeps its braces inside the word.
        if (text[i] === "$" && text[i + 1] === "{") {
          const close = text.indexOf("}", i);
          i = close === -1 ? text.length : close + 1;
        } else {
          i++;
        }
      }
      yield { kind: "word", word: { value: text.slice(start, i), start, end: i } };
    }
  }
}

/**
 * The span to delete for a parameter: the word plus the blanks before it, so
 * that `a down;` becomes `a;` exactly reversing the insertion. When the word
 * starts its line, the blanks before it are kept (deleting the newline could
 * pull the `;` into a comment on the previous line) and a line holding only
 * that word is deleted whole.
 */
function removalRange(text: string, start: number, end: number): [number, number] {
  let before = start;
  while (before > 0 && (text[before - 1] === " " || text[before - 1] === "\t")) before--;
  if (before > 0 && text[before - 1] !== "\n") return [before, end];
  let after = end;
  while (after < text.length && (text[after] === " " || text[after] === "\t")) after++;
  if (text.startsWith("\r\n", after)) return [before, after + 2];
  if (text[after] === "\n") return [before, after + 1];
  return [start, after];
}

function splice(text: string, start: number, end: number, insert: string): string {
  return text.slice(0, start) + insert + text.slice(end);
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

function assertWord(value: string, what: string): void {
  if (value === "" || /[\s;{}#"'\\]/.test(value)) {
    throw new Error(`Invalid ${what}: ${JSON.stringify(value)}`);
  }
}
