export interface Pm2Process {
  name: string;
  pid: number;
  status: string;
  restarts: number;
  /** ms since epoch when the process last started */
  startedAt?: number;
  memory?: number;
  cpu?: number;
}

/**
 * Parses `pm2 jlist`. PM2 may print a banner or daemon messages before the JSON on stdout.
 */
export function parsePm2List(stdout: string): Pm2Process[] {
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
  if (!raw) return [];
  return raw.map((entry) => {
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
}

/** Why a freshly started process is not trustworthy yet (every reason that applies), or undefined when it is. */
export function processProblem(
  now: Pm2Process | undefined,
  started: Pm2Process | undefined,
  oldPid: number | undefined,
): string | undefined {
  if (!now) return "PM2 does not list the app";
  const problems: string[] = [];
  if (now.status !== "online") problems.push(`PM2 says the app is ${now.status}`);
  if (oldPid && now.pid === oldPid) problems.push(`the old process (pid ${oldPid}) is still the one running`);
  if (started && now.restarts > started.restarts) {
    problems.push(
      `PM2 restarted the app ${now.restarts - started.restarts} time(s) during the gate (crash loop)`,
    );
  } else if (started?.pid && now.pid !== started.pid && now.status === "online") {
    problems.push(`the process changed (pid ${started.pid} -> ${now.pid}): it crashed`);
  }
  return problems.length > 0 ? problems.join("; ") : undefined;
}
