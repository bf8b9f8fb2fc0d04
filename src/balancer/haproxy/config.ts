import { standbyName } from "./standby.js";

export interface HaproxyConfigOptions {
  backend: string;
  /**
   * HAProxy server name and address ("10.0.0.2:3000") of each server; `surgeAddress` (the same
   * host on app.surgePort) adds its standby line, for the surge strategy.
   */
  servers: { name: string; address: string; surgeAddress?: string }[];
  socket: string;
  stateFile: string;
  healthPath: string;
}

/**
 * The HAProxy lines nexus relies on: an admin socket for the runtime API, a state file so that a
 * restart keeps drained servers drained, and a backend with one `server` line per nexus server.
 */
export function renderHaproxyConfig(options: HaproxyConfigOptions): string {
  const home = [options.socket, options.stateFile].some((p) => p.startsWith("~/"))
    ? "    # HAProxy does not expand ~: write the balancer host's home directory in its place.\n"
    : "";
  const servers = options.servers
    .map(
      (s) =>
        `    server ${s.name} ${s.address} check\n${
          s.surgeAddress
            ? `    server ${standbyName(s.name)} ${s.surgeAddress} check disabled weight 0\n`
            : ""
        }`,
    )
    .join("");
  const standby = options.servers.some((s) => s.surgeAddress)
    ? "    # rolling.strategy surge: each server's standby line (<name>-surge, on app.surgePort) waits\n    # in maintenance with weight 0; a deploy readies it and drains the other (docs/balancers.md).\n"
    : "";
  return `global
${home}    # nexus drains and enables servers through this socket (over SSH on this host).
    # The SSH user of balancer.host must be able to write to it (user/group/mode).
    stats socket ${options.socket} mode 660 level admin
    # Runtime state (drained, maint) is lost on restart unless it is saved and loaded:
    # nexus writes this file after each change when balancer.stateFile is set; also dump it
    # before every reload or restart of your own (e.g. systemd ExecReload).
    server-state-file ${options.stateFile}

defaults
    mode http
    load-server-state-from-file global
    option http-keep-alive
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 65s
    timeout server 65s
    timeout http-keep-alive 65s

backend ${options.backend}
    balance leastconn
    option httpchk GET ${options.healthPath}
    http-check expect status 200
    default-server inter 2s fall 3 rise 2
${standby}${servers}`;
}
