import { REMOTE_EXIT } from "../../remote/exit-codes.js";
import type { ProcessInfo, RestartResult } from "../process-manager.js";

/**
 * A small Node program run on the server with the server's own PM2: in one process it lists the
 * app's instances, deletes each by its pm id (a name such as "all" or "3" means something else to
 * PM2), starts the app afresh from the release's ecosystem file (none: only stop), and prints
 * {"before":[…],"after":[…]}. Three `pm2` CLI calls cost ~0.9s of Node start-up and daemon round
 * trips, all while the server is out of rotation; this costs ~0.3s.
 *
 * With a 4th argument "wait" it is started while the server drains (Node up, PM2 loaded and
 * connected: ~0.1 s saved out of rotation) and then takes commands on stdin, one reply line each:
 * "go" restarts as above, "list" prints {"list":[…]} through the same connection (a `pm2 jlist`
 * costs ~0.15 s, this a few ms: the health gate's process check), "save" does what `pm2 save`
 * does and prints {"saved":true}, the dump files private as PERSIST_SCRIPT leaves them (PM2's
 * dump never calls back when it cannot write the file: a timer answers then). "list" and "save"
 * answer their errors instead of ending the program. Stdin closing ends it; closed before "go"
 * (a failed drain, or nexus gone), it has restarted nothing (connecting may have started PM2's
 * daemon, as any pm2 command would).
 * A 5th argument is the restart's deadline in ms: a PM2 daemon that stops answering (it happens)
 * fails the restart, so the roll's failure path runs, instead of a deploy waiting forever with the
 * server out of rotation.
 * No single quote and no "$" in it: it sits in single quotes in RESTART_SCRIPT.
 */
export const PROGRAM = `
const [pm2Dir, name, file, wait, deadline] = process.argv.slice(1);
process.env.PM2_SILENT = "true";
const pm2 = require(pm2Dir);
const pick = (list) => list.filter((p) => p.name === name).map((p) => ({
  name: p.name, id: p.pm_id, pid: p.pid, status: p.pm2_env.status,
  restarts: p.pm2_env.restart_time, startedAt: p.pm2_env.pm_uptime,
}));
const reply = (value) => process.stdout.write(JSON.stringify(value) + "\\n");
const fail = (error) => {
  process.stderr.write(String((error && error.message) || error) + "\\n");
  try { pm2.disconnect(); } catch {}
  process.exit(1);
};
let overdue;
const armDeadline = () => {
  const limit = Number(deadline);
  if (!(limit > 0) || overdue) return;
  overdue = setTimeout(() => fail("PM2 did not finish within " + limit / 1000 + "s (its daemon may be stuck: pm2 ping tells)"), limit);
};
const restart = (finished) => pm2.list((error, beforeList) => {
  const done = () => {
    clearTimeout(overdue);
    finished();
  };
  if (error) return fail(error);
  const before = pick(beforeList);
  const remove = (ids, next) => {
    if (ids.length === 0) return next();
    pm2.delete(ids[0], () => remove(ids.slice(1), next));
  };
  remove(before.map((p) => p.id), () => {
    if (!file) {
      reply({ before, after: [] });
      return done();
    }
    pm2.start(file, (error) => {
      if (error) return fail(error);
      pm2.list((error, afterList) => {
        if (error) return fail(error);
        reply({ before, after: pick(afterList), now: Date.now() });
        done();
      });
    });
  });
});
const list = (done) => pm2.list((error, all) => {
  reply(error ? { list: null, error: String(error.message || error) } : { list: pick(all) });
  done();
});
const save = (done) => {
  const fs = require("fs");
  const paths = require(pm2Dir + "/constants.js");
  let answered = false;
  const answer = (value) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    for (const file of [paths.DUMP_FILE_PATH, paths.DUMP_BACKUP_FILE_PATH]) {
      try { fs.chmodSync(file, 0o600); } catch {}
    }
    reply(value);
    done();
  };
  const timer = setTimeout(() => answer({ saved: false, error: "no answer from PM2 within 5s" }), 5000);
  process.umask(0o077);
  try {
    pm2.dump(true, (error) => answer(error ? { saved: false, error: String(error.message || error) } : { saved: true }));
  } catch (error) {
    answer({ saved: false, error: String(error.message || error) });
  }
};
if (wait !== "wait") {
  armDeadline();
  pm2.connect((error) => {
    if (error) return fail(error);
    restart(() => pm2.disconnect());
  });
} else {
  const queue = [];
  let input = "";
  let ended = false;
  let busy = false;
  let connected = false;
  const next = () => {
    if (!connected || busy) return;
    const command = queue.shift();
    if (command === undefined) return ended && pm2.disconnect();
    busy = true;
    const done = () => {
      busy = false;
      next();
    };
    if (command === "go") restart(done);
    else if (command === "list") list(done);
    else if (command === "save") save(done);
    else done();
  };
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    const lines = (input + chunk).split("\\n");
    input = lines.pop();
    queue.push(...lines);
    if (lines.includes("go")) armDeadline();
    next();
  });
  process.stdin.on("end", () => {
    ended = true;
    // Closed with nothing asked while PM2 has not answered the connect (a daemon that hangs):
    // nothing is left to do, and nothing else would end this process.
    if (!connected && queue.length === 0) process.exit(0);
    next();
  });
  pm2.connect((error) => {
    if (error) return fail(error);
    connected = true;
    next();
  });
}
`;

/** Finds the PM2 package behind the `pm2` on PATH (the PM2 the operator uses). */
const FIND_PM2 = `pm2_bin=$(command -v pm2) || { echo "pm2 is not installed on this server, or not on the PATH of a non-interactive SSH command (npm install -g pm2; see docs/servers.md)" >&2; exit ${REMOTE_EXIT.notInstalled}; }
pm2_dir=$(dirname "$(dirname "$(readlink -f "$pm2_bin")")")`;

/**
 * $1 the app's name, $2 the release's ecosystem file, $3 "wait" to take commands on stdin, $4 the
 * deadline in ms for the restart (from "go" with "wait"), after which the program fails.
 */
export const RESTART_SCRIPT = `${FIND_PM2}
exec node -e '${PROGRAM}' "$pm2_dir" "$1" "$2" "\${3:-}" "\${4:-}"`;

export function parseRestart(stdout: string): RestartResult {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (!line) throw new Error("PM2 printed no result");
  const raw = JSON.parse(line) as {
    before?: ProcessInfo[] | null;
    after?: ProcessInfo[] | null;
    now?: unknown;
  };
  const list = (value: ProcessInfo[] | null | undefined) => (Array.isArray(value) ? value : []);
  const result: RestartResult = { before: list(raw.before), after: list(raw.after) };
  if (typeof raw.now === "number") result.serverNow = raw.now;
  return result;
}

/** A "save" reply of the prepared program: an error when PM2 could not write its dump. */
export function parseSaved(line: string): void {
  const raw = JSON.parse(line) as { saved?: boolean; error?: string };
  if (raw.saved !== true) throw new Error(`pm2 save failed: ${raw.error ?? "no answer"}`);
}

/** A "list" reply of the prepared program. */
export function parseList(line: string): ProcessInfo[] {
  const raw = JSON.parse(line) as { list?: ProcessInfo[] | null; error?: string };
  if (!Array.isArray(raw.list)) throw new Error(`PM2 could not list the app: ${raw.error ?? "no list"}`);
  return raw.list;
}

/**
 * $1 the app's name. `pm2 save` writes every env value to dump.pm2: with a private umask, and
 * the file made 0600 even when an older save left it readable.
 */
export const PERSIST_SCRIPT = `umask 077
pm2 save --force >/dev/null 2>&1 || exit 0
chmod 600 "\${PM2_HOME:-$HOME/.pm2}/dump.pm2" 2>/dev/null || true`;

/**
 * $1 the app's name: its instances deleted by pm id (given a name it does not know, \`pm2 delete\`
 * falls back to a namespace of that name, and \`all\` means every app). $2 the deadline in ms.
 */
export const STOP_SCRIPT = `${FIND_PM2}
exec node -e '${PROGRAM}' "$pm2_dir" "$1" "" "" "\${2:-}"`;
