import { script } from "../../remote/op.js";
import type { ProcessInfo } from "../process-manager.js";

/**
 * Reads `pm2 jlist` on the server and prints only what nexus needs of the app's instances, as one
 * JSON array line: name, pid, status, restarts, start time, memory, cpu and the release. A raw
 * `jlist` holds every process's `pm2_env`: the PM2 daemon's inherited variables, other apps'
 * secrets, values since removed from the config. Filtered here, none of it leaves the server, so
 * no `--verbose` output can show it. PM2's banner and daemon messages (which may precede the
 * JSON even with PM2_SILENT) are dropped. No single quote and no "$" in it: it sits in single
 * quotes in JLIST_SCRIPT.
 */
const PROGRAM = `
const name = process.argv[1];
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  for (const line of input.split("\\n").reverse()) {
    if (!line.trimStart().startsWith("[")) continue;
    let list;
    try { list = JSON.parse(line); } catch { continue; }
    if (!Array.isArray(list)) continue;
    const picked = list.filter((p) => p && p.name === name).map((p) => {
      const env = p.pm2_env || {};
      const monit = p.monit || {};
      return {
        name: p.name, pid: p.pid,
        pm2_env: { status: env.status, restart_time: env.restart_time, pm_uptime: env.pm_uptime },
        monit: { memory: monit.memory, cpu: monit.cpu },
        release: (env.env && env.env.NEXUS_RELEASE) || env.NEXUS_RELEASE,
      };
    });
    process.stdout.write(JSON.stringify(picked) + "\\n");
    return;
  }
});
`;

/** $1 the app's PM2 name. `pm2 jlist` with PM2 silenced, reduced on the server (PROGRAM above). */
export const JLIST_SCRIPT = `PM2_SILENT=true pm2 jlist | node -e '${PROGRAM}' "$1"`;

/** The listing of one app's instances, without any process's env. */
export function jlistCommand(name: string): string {
  return script(JLIST_SCRIPT, name);
}

/** The app's instances in `pm2 jlist` output: the last line that parses as a JSON array. */
export function parseJlist(stdout: string, name?: string): ProcessInfo[] {
  // PM2's own messages also start with "[" ("[PM2] Spawning PM2 daemon"): take the line that parses.
  let raw: unknown[] | undefined;
  for (const line of stdout.split("\n").reverse()) {
    if (!line.trimStart().startsWith("[")) continue;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (Array.isArray(parsed)) {
        raw = parsed;
        break;
      }
    } catch {
      // not the JSON line
    }
  }
  const all = (raw ?? []).map((entry) => {
    const e = entry as {
      name?: string;
      pid?: number;
      monit?: { memory?: number; cpu?: number };
      pm2_env?: { status?: string; restart_time?: number; pm_uptime?: number };
    };
    return {
      name: String(e.name ?? ""),
      pid: Number(e.pid ?? 0),
      status: String(e.pm2_env?.status ?? "unknown"),
      restarts: Number(e.pm2_env?.restart_time ?? 0),
      startedAt: e.pm2_env?.pm_uptime,
      memory: e.monit?.memory,
      cpu: e.monit?.cpu,
    };
  });
  return name === undefined ? all : all.filter((p) => p.name === name);
}
