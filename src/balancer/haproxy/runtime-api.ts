import { shq } from "../../remote/quote.js";

/** Printed after each runtime API command's reply, with the exit status of the socket client. */
const MARK = "@@nexus-haproxy-reply";

/** Exit status of the script when the admin socket is missing or not writable. */
export const NO_SOCKET = 90;

/**
 * A Node socket client for hosts without socat: sends stdin, prints the reply. HAProxy's
 * non-interactive CLI answers one line of commands and closes the connection.
 */
const NODE_CLIENT = [
  'const c = require("net").connect(process.argv[1]);',
  'let input = "";',
  'process.stdin.on("data", (d) => { input += d; }).on("end", () => c.end(input));',
  "c.pipe(process.stdout);",
  'c.on("error", (e) => { process.stderr.write(e.message + "\\n"); process.exit(1); });',
].join(" ");

/**
 * A shell script for the balancer host that sends each command to HAProxy's admin socket on its own
 * connection (socat if installed, else node) and marks the end of each reply. One SSH round trip.
 * `after` lines run at the end (saving the state file).
 */
export function runtimeScript(
  socket: string,
  commands: readonly string[],
  after: readonly string[] = [],
): string {
  return [
    ...preamble(socket),
    ...commands.map((command) => `hap ${shq(command)}; printf '\\n${MARK} %s\\n' "$?"`),
    ...after,
  ].join("\n");
}

/** The admin socket check and `hap`, which sends one command on its own connection. */
function preamble(socket: string): string[] {
  return [
    `sock=${shq(socket)}`,
    `if [ ! -S "$sock" ] || [ ! -w "$sock" ]; then echo "no writable HAProxy admin socket at $sock" >&2; exit ${NO_SOCKET}; fi`,
    "hap() {",
    "  if command -v socat >/dev/null 2>&1; then",
    `    printf '%s\\n' "$1" | socat -t 10 stdio "UNIX-CONNECT:$sock"`,
    "  else",
    `    printf '%s\\n' "$1" | node -e ${shq(NODE_CLIENT)} "$sock"`,
    "  fi",
    "}",
  ];
}

/**
 * One poll of a drain, in one round trip: the backend's `show stat` and `show servers state`
 * (two replies), and when the server has no session and nothing queued, `set server … state
 * maint` (a third reply) and then `after` (saving the state file): the drain's last poll and its
 * maintenance cost one round trip, not two.
 */
export function drainPollScript(
  socket: string,
  backend: string,
  server: string,
  after: readonly string[] = [],
): string {
  const columns =
    'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; sub(/^# */, "", h); col[h] = i }; next } ' +
    '$col["pxname"] == be && $col["svname"] == s { print $col["qcur"] + $col["scur"]; exit }';
  return [
    ...preamble(socket),
    `stat=$(hap ${shq(`show stat ${backend} 4 -1`)}); code=$?; printf '%s\\n\\n${MARK} %s\\n' "$stat" "$code"`,
    `hap ${shq(`show servers state ${backend}`)}; printf '\\n${MARK} %s\\n' "$?"`,
    `open=$(printf '%s\\n' "$stat" | awk -F, -v be=${shq(backend)} -v s=${shq(server)} ${shq(columns)})`,
    `if [ "$open" = 0 ]; then hap ${shq(setServerState(backend, server, "maint"))}; printf '\\n${MARK} %s\\n' "$?"`,
    ...after,
    "fi",
  ].join("\n");
}

/** Printed when the state file could not be written: the change itself stands (a warning, not a failure). */
export const STATE_FILE_FAILED = "@@nexus-haproxy-state-file-failed";

/**
 * Writes the full `show servers state` (all backends, as `load-server-state-from-file global`
 * expects) to `file` through a temporary file, so HAProxy never reads half a file.
 */
export function saveStateLines(file: string): string[] {
  return [
    `state_file=${shq(file)}`,
    `if ! { hap 'show servers state' > "$state_file.nexus-tmp" && mv -f "$state_file.nexus-tmp" "$state_file"; }; then echo ${STATE_FILE_FAILED}; fi`,
  ];
}

export interface Reply {
  /** The reply text, without the trailing blank line HAProxy ends each reply with. */
  text: string;
  /** Exit status of the socket client (not HAProxy's verdict: that is in the text). */
  status: number;
}

/** Splits a runtimeScript's stdout into one reply per command. */
export function splitReplies(stdout: string): Reply[] {
  const replies: Reply[] = [];
  let text: string[] = [];
  for (const line of stdout.split("\n")) {
    const mark = line.startsWith(`${MARK} `) ? Number.parseInt(line.slice(MARK.length + 1), 10) : undefined;
    if (mark === undefined) {
      text.push(line);
      continue;
    }
    replies.push({ text: text.join("\n").trim(), status: mark });
    text = [];
  }
  return replies;
}

/** `set server` commands answer nothing when they succeed, and a sentence when they do not. */
export function setServerState(backend: string, server: string, state: "ready" | "drain" | "maint"): string {
  return `set server ${backend}/${server} state ${state}`;
}
