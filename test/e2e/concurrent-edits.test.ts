import { readdirSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { hostUser, nexus, readUpstream, uniqueRelease, upstreamFilePath, writeConfig } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

/** Pids of the apply scripts waiting for the upstream file's lock (`flock -w ... 9`). */
async function waitingForLock(): Promise<number> {
  const uid = String(hostUser(sandboxInfo().lb.host).uid);
  const run = await execa("pgrep", ["-U", uid, "-f", "^flock -w [0-9]+ 9$"], { reject: false });
  return run.stdout.split("\n").filter(Boolean).length;
}

describe("two runs editing the upstream file at once", () => {
  const config = writeConfig();
  const info = sandboxInfo();
  const [, beta, gamma] = info.hosts;
  if (!beta || !gamma) throw new Error("the sandbox needs 3 hosts");

  beforeAll(async () => {
    const run = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("concurrent")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("both drains land: neither run writes back the file it read before the other's edit", async () => {
    // Hold the file's lock, so that both drains read the same file and then wait; once both
    // wait, let go: one writes, the other sees the file changed, reads it again and redoes its edit.
    const holder = execa("flock", [upstreamFilePath(), "-c", "echo held; read line"], { reject: false });
    try {
      // The lock is held before either drain starts: neither can write before the other has read.
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("held")) resolve();
        });
        holder.once("exit", () => reject(new Error("flock ended before it held the lock")));
      });
      const drains = [
        nexus(["-c", config, "drain", "--force", beta.name]),
        nexus(["-c", config, "drain", "--force", gamma.name]),
      ];
      for (let i = 0; (await waitingForLock()) < 2; i++) {
        if (i > 1200) throw new Error("the drains never reached the lock");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      holder.stdin?.end("\n");
      await holder;
      const [a, b] = await Promise.all(drains);
      expect(a?.exitCode, a?.all).toBe(0);
      expect(b?.exitCode, b?.all).toBe(0);
    } finally {
      holder.kill();
    }
    const text = readUpstream();
    expect(text).toMatch(new RegExp(`${beta.address.replaceAll(".", "\\.")}:3000[^\n]*down;`));
    expect(text).toMatch(new RegExp(`${gamma.address.replaceAll(".", "\\.")}:3000[^\n]*down;`));
    // No backup left beside the file (a directory Nginx includes with * would load it).
    expect(
      readdirSync(path.dirname(upstreamFilePath())).filter((f) => /backup|nexus-upstream/.test(f)),
    ).toEqual([]);

    for (const name of [beta.name, gamma.name]) {
      const run = await nexus(["-c", config, "enable", name]);
      expect(run.exitCode, run.all).toBe(0);
    }
    expect(readUpstream()).not.toMatch(/\bdown;/);
  });
});
