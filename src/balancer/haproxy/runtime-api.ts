import { script } from "../../remote/op.js";
import { shq } from "../../remote/quote.js";

/** Exit status of the channel's script when the admin socket is missing or not writable. */
export const NO_SOCKET = 90;

/**
 * A Node socket client for hosts without socat: stdin to the socket, the socket to stdout, until
 * either side ends.
 */
const NODE_CLIENT = [
  'const c = require("net").connect(process.argv[1]);',
  "process.stdin.pipe(c);",
  "c.pipe(process.stdout);",
  'c.on("error", (e) => { process.stderr.write(e.message + "\\n"); process.exit(1); });',
  'c.on("close", () => process.exit(0));',
].join(" ");

/**
 * A shell script for the balancer host that connects its stdin and stdout to HAProxy's admin
 * socket (socat if installed, else node) and stays connected: nexus then speaks the CLI's
 * interactive mode over it (RuntimeChannel), one SSH channel for every command of a deploy.
 */
export function channelScript(socket: string): string {
  // Under `sh -c` (script), whatever the login shell of the balancer host's user (fish, csh…).
  return script(
    [
      "sock=$1",
      `if [ ! -S "$sock" ] || [ ! -w "$sock" ]; then echo "no writable HAProxy admin socket at $sock" >&2; exit ${NO_SOCKET}; fi`,
      'if command -v socat >/dev/null 2>&1; then exec socat stdio "UNIX-CONNECT:$sock"; fi',
      `exec node -e ${shq(NODE_CLIENT)} "$sock"`,
    ].join("\n"),
    socket,
  );
}

/**
 * Writes its stdin (a full `show servers state`: all backends, as `load-server-state-from-file
 * global` expects) to `file` through a temporary file, so HAProxy never reads half a file.
 */
export function writeStateFileScript(file: string): string {
  return script(
    'state_file=$1\ncat > "$state_file.nexus-tmp" && mv -f "$state_file.nexus-tmp" "$state_file"',
    file,
  );
}

/** `set server` commands answer nothing when they succeed, and a sentence when they do not. */
export function setServerState(backend: string, server: string, state: "ready" | "drain" | "maint"): string {
  return `set server ${backend}/${server} state ${state}`;
}
