import { shq } from "./quote.js";

/**
 * A small Node program run on the server with the server's own PM2: in one process it reads
 * the app's old pid, deletes the app, starts it afresh from the release's ecosystem file, and
 * prints {"before":…,"after":…} as JSON. Three `pm2` CLI calls cost ~0.9s of Node start-up and
 * daemon round trips, all while the server is out of rotation; this costs ~0.3s.
 */
const SCRIPT = `
const [pm2Dir, name, file] = process.argv.slice(1);
process.env.PM2_SILENT = "true";
const pm2 = require(pm2Dir);
const pick = (list) => {
  const p = list.find((x) => x.name === name);
  return p ? { pid: p.pid, status: p.pm2_env.status, restarts: p.pm2_env.restart_time } : null;
};
const fail = (error) => {
  process.stderr.write(String((error && error.message) || error) + "\\n");
  try { pm2.disconnect(); } catch {}
  process.exit(1);
};
pm2.connect((error) => {
  if (error) return fail(error);
  pm2.list((error, beforeList) => {
    if (error) return fail(error);
    const before = pick(beforeList);
    const start = () =>
      pm2.start(file, (error) => {
        if (error) return fail(error);
        pm2.list((error, afterList) => {
          if (error) return fail(error);
          process.stdout.write(JSON.stringify({ before, after: pick(afterList) }) + "\\n");
          pm2.disconnect();
        });
      });
    if (before) pm2.delete(name, () => start());
    else start();
  });
});
`;

/** Locates the PM2 package behind the `pm2` on PATH (the same PM2 the operator uses). */
const PM2_DIR = `pm2_bin=$(command -v pm2) || { echo "pm2 is not installed on this server (npm install -g pm2)" >&2; exit 127; }; pm2_dir=$(dirname "$(dirname "$(readlink -f "$pm2_bin")")")`;

export function pm2Restart(name: string, ecosystem: string): string {
  return `${PM2_DIR}; node -e ${shq(SCRIPT)} "$pm2_dir" ${shq(name)} ${shq(ecosystem)}`;
}

export interface Pm2RestartResult {
  before: { pid: number; status: string; restarts: number } | null;
  after: { pid: number; status: string; restarts: number } | null;
}

export function parsePm2Restart(stdout: string): Pm2RestartResult {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (!line) throw new Error("PM2 printed no result");
  return JSON.parse(line) as Pm2RestartResult;
}
