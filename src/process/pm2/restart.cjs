// @ts-check
/**
 * Run on the server with the server's own PM2, by restart.sh and stop.sh as
 * `node -e <this> PM2_DIR NAME FILE [wait] [DEADLINE_MS]`: in one process it lists the app's
 * instances, deletes each by its pm id (a name such as "all" or "3" means something else to PM2),
 * starts the app afresh from the release's ecosystem file FILE (none: only stop), and prints
 * {"before":[…],"after":[…],"now":…}. Three `pm2` CLI calls cost ~0.9s of Node start-up and
 * daemon round trips, all while the server is out of rotation; this costs ~0.3s.
 *
 * With "wait" it is started while the server drains (Node up, PM2 loaded and connected: ~0.1 s
 * saved out of rotation) and then takes commands on stdin, one reply line each: "go" restarts as
 * above, "list" prints {"list":[…]} through the same connection (a `pm2 jlist` costs ~0.15 s, this
 * a few ms: the health gate's process check), "save" does what `pm2 save` does and prints
 * {"saved":true}, the dump files private as persist.sh leaves them (PM2's dump never calls back
 * when it cannot write the file: a timer answers then). "stop NAME" deletes the instances of
 * another app name (the surge strategy's process on the other port, once the balancer has left
 * it) and prints {"stopped":N}: no second Node and PM2 start on the server for it. "list",
 * "save" and "stop" answer their errors instead of ending the program. Stdin closing ends it;
 * closed before "go" (a failed drain, or nexus gone), it has restarted nothing (connecting may
 * have started PM2's daemon, as any pm2 command would).
 * DEADLINE_MS bounds the restart: a PM2 daemon that stops answering (it happens) fails it, so the
 * roll's failure path runs, instead of a deploy waiting forever with the server out of rotation.
 */

/**
 * The part of PM2's programmatic API (the `pm2` package) this program uses.
 * @typedef {{ name: string, pm_id: number, pid: number, pm2_env: { status: string, restart_time: number, pm_uptime: number } }} Pm2Process
 * @typedef {(error: Error | null) => void} Done
 * @typedef {{
 *   connect(callback: Done): void,
 *   disconnect(): void,
 *   list(callback: (error: Error | null, list: Pm2Process[]) => void): void,
 *   delete(id: number, callback: Done): void,
 *   start(file: string, callback: Done): void,
 *   dump(force: boolean, callback: Done): void,
 * }} Pm2Api
 */

const [pm2Dir = "", name, file, wait, deadline] = process.argv.slice(1);
process.env.PM2_SILENT = "true";
/** @type {Pm2Api} */
const pm2 = require(pm2Dir);

/** @param {Pm2Process[]} list */
const pick = (list) =>
  list
    .filter((p) => p.name === name)
    .map((p) => ({
      name: p.name,
      id: p.pm_id,
      pid: p.pid,
      status: p.pm2_env.status,
      restarts: p.pm2_env.restart_time,
      startedAt: p.pm2_env.pm_uptime,
    }));
/** @param {unknown} value */
const reply = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
/** @param {unknown} error PM2 calls back with an Error, an object with a message, or a string */
const message = (error) => String((error && /** @type {{ message?: unknown }} */ (error).message) || error);
/** @param {unknown} error */
const fail = (error) => {
  process.stderr.write(`${message(error)}\n`);
  try {
    pm2.disconnect();
  } catch {}
  process.exit(1);
};

/** @type {NodeJS.Timeout | undefined} */
let overdue;
const armDeadline = () => {
  const limit = Number(deadline);
  if (!(limit > 0) || overdue) return;
  overdue = setTimeout(
    () => fail(`PM2 did not finish within ${limit / 1000}s (its daemon may be stuck: pm2 ping tells)`),
    limit,
  );
};

/**
 * Deletes by pm id, one after the other.
 * @param {number[]} ids
 * @param {() => void} next
 */
const remove = (ids, next) => {
  const [id, ...rest] = ids;
  if (id === undefined) return next();
  pm2.delete(id, () => remove(rest, next));
};

/** @param {() => void} finished */
const restart = (finished) =>
  pm2.list((error, beforeList) => {
    const done = () => {
      clearTimeout(overdue);
      finished();
    };
    if (error) return fail(error);
    const before = pick(beforeList);
    remove(
      before.map((p) => p.id),
      () => {
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
      },
    );
  });

/** @param {() => void} done */
const list = (done) =>
  pm2.list((error, all) => {
    reply(error ? { list: null, error: message(error) } : { list: pick(all) });
    done();
  });

/**
 * @param {string} target another app name
 * @param {() => void} done
 */
const stop = (target, done) =>
  pm2.list((error, all) => {
    if (error) {
      reply({ stopped: null, error: message(error) });
      return done();
    }
    const ids = all.filter((p) => p.name === target).map((p) => p.pm_id);
    remove(ids, () => {
      reply({ stopped: ids.length });
      done();
    });
  });

/** @param {() => void} done */
const save = (done) => {
  const fs = require("node:fs");
  /** @type {{ DUMP_FILE_PATH: string, DUMP_BACKUP_FILE_PATH: string }} */
  const paths = require(`${pm2Dir}/constants.js`);
  let answered = false;
  /** @param {{ saved: boolean, error?: string }} value */
  const answer = (value) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    for (const dump of [paths.DUMP_FILE_PATH, paths.DUMP_BACKUP_FILE_PATH]) {
      try {
        fs.chmodSync(dump, 0o600);
      } catch {}
    }
    reply(value);
    done();
  };
  const timer = setTimeout(() => answer({ saved: false, error: "no answer from PM2 within 5s" }), 5000);
  process.umask(0o077);
  try {
    pm2.dump(true, (error) => answer(error ? { saved: false, error: message(error) } : { saved: true }));
  } catch (error) {
    answer({ saved: false, error: message(error) });
  }
};

if (wait !== "wait") {
  armDeadline();
  pm2.connect((error) => {
    if (error) return fail(error);
    restart(() => pm2.disconnect());
  });
} else {
  /** @type {string[]} */
  const queue = [];
  let input = "";
  let ended = false;
  let busy = false;
  let connected = false;
  /** @returns {void} */
  const next = () => {
    if (!connected || busy) return;
    const command = queue.shift();
    if (command === undefined) {
      if (ended) pm2.disconnect();
      return;
    }
    busy = true;
    const done = () => {
      busy = false;
      next();
    };
    if (command === "go") restart(done);
    else if (command === "list") list(done);
    else if (command === "save") save(done);
    else if (command.startsWith("stop ")) stop(command.slice("stop ".length), done);
    else done();
  };
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    const lines = (input + chunk).split("\n");
    input = lines.pop() ?? "";
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
