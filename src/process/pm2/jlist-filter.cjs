// @ts-check
/**
 * Run on the server by jlist.sh as `pm2 jlist | node -e <this> NAME`: prints only what nexus needs
 * of the app's instances, as one JSON array line: name, pid, status, restarts, start time, memory,
 * cpu and the release. A raw `jlist` holds every process's `pm2_env`: the PM2 daemon's inherited
 * variables, other apps' secrets, values since removed from the config. Filtered here, none of it
 * leaves the server, so no `--verbose` output can show it. PM2's banner and daemon messages (which
 * may precede the JSON even with PM2_SILENT) are dropped: the last line that parses as an array is
 * the listing.
 */
const name = process.argv[1];
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  for (const line of input.split("\n").reverse()) {
    if (!line.trimStart().startsWith("[")) continue;
    /** @type {unknown} */
    let list;
    try {
      list = JSON.parse(line);
    } catch {
      continue;
    }
    if (!Array.isArray(list)) continue;
    const picked = list
      .filter((p) => p && p.name === name)
      .map((p) => {
        const env = p.pm2_env || {};
        const monit = p.monit || {};
        return {
          name: p.name,
          pid: p.pid,
          pm2_env: { status: env.status, restart_time: env.restart_time, pm_uptime: env.pm_uptime },
          monit: { memory: monit.memory, cpu: monit.cpu },
          release: env.env?.NEXUS_RELEASE || env.NEXUS_RELEASE,
        };
      });
    process.stdout.write(`${JSON.stringify(picked)}\n`);
    return;
  }
});
