import { script } from "../../remote/op.js";
import { scriptFile, withProgram } from "../../remote/script-file.js";
import type { ProcessInfo } from "../process-manager.js";

/**
 * $1 the app's PM2 name. `pm2 jlist` with PM2 silenced, reduced on the server to the app's
 * instances without any process's env (jlist-filter.cjs says why).
 */
export const JLIST_SCRIPT = withProgram(
  scriptFile(import.meta.url, "jlist.sh"),
  scriptFile(import.meta.url, "jlist-filter.cjs"),
);

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
      release?: unknown;
    };
    return {
      name: String(e.name ?? ""),
      pid: Number(e.pid ?? 0),
      status: String(e.pm2_env?.status ?? "unknown"),
      restarts: Number(e.pm2_env?.restart_time ?? 0),
      startedAt: e.pm2_env?.pm_uptime,
      memory: e.monit?.memory,
      cpu: e.monit?.cpu,
      ...(typeof e.release === "string" ? { release: e.release } : {}),
    };
  });
  return name === undefined ? all : all.filter((p) => p.name === name);
}
