import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { lockOn, plantLock, SERVERS, writeConfig } from "./helpers.js";
import { PROJECT_ROOT } from "./sandbox-env.js";

/**
 * Two CI jobs in containers that share a hostname (`--network host`, a fixed `hostname:`) but
 * each have their own pid namespace: each runs nexus here under `unshare --pid --fork`, so neither
 * can see the other's pids. As root it needs no user namespace; otherwise one maps us to root.
 */
const UNSHARE =
  process.getuid?.() === 0
    ? ["unshare", "--pid", "--fork"]
    : ["unshare", "--user", "--map-root-user", "--pid", "--fork"];

const cli = path.join(PROJECT_ROOT, "bin", "nexus.js");
const env = { CI: "true", NO_COLOR: "1" };

async function until(check: () => boolean, what: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the deploy lock across pid namespaces on one hostname", () => {
  it("a live deploy's lock is not taken for stale by a job in another pid namespace: recover and deploy refuse it", async () => {
    // The first job's deploy holds the lock on every server, in its beforeRoll hook, until told.
    const gate = mkdtempSync(path.join(os.tmpdir(), "nexus-lock-ns-"));
    chmodSync(gate, 0o777); // the hook runs as the sandbox's deploy user
    const inHook = path.join(gate, "in-hook");
    const go = path.join(gate, "go");
    const config = writeConfig({
      hooks: {
        beforeRoll: `touch ${inHook}; while [ ! -e ${go} ]; do sleep 0.1; done; exit 1`,
        timeout: "120s",
      },
    });
    // A few processes first, so its nexus runs under a pid the other namespace does not have
    // (there, nexus is pid 1 and starts no other process).
    const first = execa(
      UNSHARE[0] as string,
      [
        ...UNSHARE.slice(1),
        "sh",
        "-c",
        'i=0; while [ "$i" -lt 40 ]; do /bin/true; i=$((i + 1)); done; node "$0" -c "$1" deploy',
        cli,
        config,
      ],
      { reject: false, all: true, env, timeout: 150_000 },
    );
    try {
      await until(() => existsSync(inHook), "the first deploy's beforeRoll hook");
      const holder = JSON.parse(lockOn(SERVERS[0] as string) ?? "{}") as Record<string, unknown>;
      expect(holder.pid).toBeGreaterThan(40);

      const second = (args: string[]) =>
        execa(UNSHARE[0] as string, [...UNSHARE.slice(1), "node", cli, "-c", config, ...args], {
          reject: false,
          all: true,
          env,
          timeout: 150_000,
        });
      const recover = await second(["recover"]);
      expect(recover.exitCode, recover.all).not.toBe(0);
      expect(recover.all).toMatch(/may still be running/);
      expect(recover.all).not.toMatch(/stale/);
      const deploy = await second(["deploy"]);
      expect(deploy.exitCode, deploy.all).toBe(1);
      expect(deploy.all).toMatch(/deploy locked by .*\(pid \d+, deploy/);
      expect(deploy.all).not.toMatch(/breaking a stale lock/);
      // The first job's lock was never broken.
      expect(JSON.parse(lockOn(SERVERS[0] as string) ?? "{}").token).toBe(holder.token);
      expect(holder.pidNamespace).toMatch(/^pid:\[\d+\]$/);
    } finally {
      writeFileSync(go, "");
      const ended = await first;
      // Its hook failed on purpose: nothing was drained, and its locks are gone.
      expect(ended.exitCode, ended.all).toBe(1);
    }
    for (const name of SERVERS) expect(lockOn(name), name).toBeUndefined();
  }, 180_000);

  it("within one pid namespace, a holder that exited is still known stale: recover clears its lock", async () => {
    const config = writeConfig();
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-lock-ns-"));
    const lock = path.join(PROJECT_ROOT, "dist", "deploy", "lock.js");
    // In one namespace: a nexus process takes a holder's identity and exits; once its lock is
    // planted on every server, recover runs in that same namespace.
    const job = execa(
      UNSHARE[0] as string,
      [
        ...UNSHARE.slice(1),
        "sh",
        "-c",
        `node -e 'import(process.argv[1]).then((m) => console.log(JSON.stringify(m.newHolder("deploy"))))' "$2" > "$1/holder.json"
        touch "$1/ready"
        while [ ! -e "$1/planted" ]; do sleep 0.1; done
        exec node "$0" -c "$3" recover`,
        cli,
        dir,
        lock,
        config,
      ],
      { reject: false, all: true, env, timeout: 150_000 },
    );
    await until(() => existsSync(path.join(dir, "ready")), "the dead holder");
    const holder = JSON.parse(readFileSync(path.join(dir, "holder.json"), "utf8")) as Record<string, unknown>;
    expect(holder.pidNamespace).toMatch(/^pid:\[\d+\]$/);
    for (const name of SERVERS) plantLock(name, holder);
    writeFileSync(path.join(dir, "planted"), "");
    const recovered = await job;
    expect(recovered.exitCode, recovered.all).toBe(0);
    expect(recovered.all).toContain("stale locks were cleared");
    for (const name of SERVERS) expect(lockOn(name), name).toBeUndefined();
  }, 180_000);
});
