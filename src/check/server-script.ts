import { procNetTcpAddress } from "../balancer/nginx/scripts.js";
import { shq } from "../remote/quote.js";
import { SCRIPT_PRELUDE } from "./facts.js";

export interface ServerScriptInput {
  /** The deploy path, absolute (resolved against $HOME). */
  deployPath: string;
  appPort: number;
  /** The address the app listens on (the upstream's host); only a listener there or on all addresses conflicts. */
  appHost: string;
  pm2Name: string;
}

/**
 * Read-only facts about an app server, in one round trip, as the login user sees them in a
 * non-interactive SSH command (the PATH nexus itself gets).
 */
export function serverScript({ deployPath, appPort, appHost, pm2Name }: ServerScriptInput): string {
  const port = appPort.toString(16).toUpperCase().padStart(4, "0");
  // /proc/net/tcp's hex address; a host name (not an IPv4 literal) matches any address.
  const ip = procNetTcpAddress(`${appHost}:${appPort}`)?.split(":")[0];
  const hostMatch = ip ? `(a[1] == "${ip}" || a[1] == "00000000" || a[1] ~ /^0+$/)` : "1";
  return [
    SCRIPT_PRELUDE,
    'say user "$(id -un)"',
    'say home "$HOME"',
    'say path "$PATH"',
    'for b in node npm pm2; do p=$(command -v "$b" 2>/dev/null) && say "$b"_path "$p"; done',
    'command -v node >/dev/null 2>&1 && say node_version "$(node -v 2>&1)"',
    'command -v npm >/dev/null 2>&1 && say npm_version "$(npm -v 2>&1)"',
    // pm2's version from its package.json: `pm2 -v` can start a daemon, and check changes nothing.
    'p=$(command -v pm2 2>/dev/null) && d=$(dirname "$(readlink -f "$p")") && say pm2_version "$(sed -n \'s/^ *"version": *"\\([^"]*\\)".*/\\1/p\' "$d/../package.json" 2>/dev/null | head -n 1)"',
    // nvm installs Node under ~/.nvm, on the PATH of interactive shells only.
    'for f in "$HOME"/.nvm/versions/node/*/bin/node; do [ -x "$f" ] && say nvm_bin "$(dirname "$f")"; done',
    'u=$(id -un); for f in "/etc/systemd/system/pm2-$u.service" "/lib/systemd/system/pm2-$u.service"; do [ -f "$f" ] && say pm2_unit "$f"; done',
    'command -v systemctl >/dev/null 2>&1 && say pm2_unit_enabled "$(systemctl is-enabled "pm2-$(id -un)" 2>/dev/null)"',
    `d=${shq(deployPath)}; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done`,
    'say deploy_existing "$d"',
    '[ -w "$d" ] && [ -x "$d" ] && say deploy_writable 1',
    'say deploy_owner "$(ls -ld "$d" 2>/dev/null | awk \'{print $3":"$4" "$1}\')"',
    'say free_kb "$(df -Pk "$d" 2>/dev/null | awk \'NR==2 {print $4}\')"',
    // Listening sockets on the app port (state 0A), then which of our processes holds them.
    `inodes=$(awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == "${port}" && ${hostMatch}) print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)`,
    'say port_listeners "$(printf \'%s\\n\' "$inodes" | grep -c .)"',
    "for i in $inodes; do",
    '  owner=""',
    '  for fd in /proc/[0-9]*/fd/*; do if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$i]" ]; then owner=$(echo "$fd" | cut -d/ -f3); break; fi; done',
    '  if [ -z "$owner" ]; then say port_holder other; continue; fi',
    `  name=$(tr '\\0' '\\n' < "/proc/$owner/environ" 2>/dev/null | sed -n 's/^name=//p' | head -n 1)`,
    `  if [ "$name" = ${shq(pm2Name)} ]; then say port_holder app; elif tr '\\0' ' ' < "/proc/$owner/cmdline" 2>/dev/null | grep -q 'PM2'; then say port_holder pm2; else say port_holder "pid $owner $(tr '\\0' ' ' < "/proc/$owner/cmdline" 2>/dev/null | cut -c1-60)"; fi`,
    "done",
    "exit 0",
  ].join("\n");
}
