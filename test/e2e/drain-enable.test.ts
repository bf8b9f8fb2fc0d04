import net from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { nexus, readUpstream, throughLb, throughLbUntilEach, uniqueRelease, writeConfig } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

describe("nexus drain / enable", () => {
  const config = writeConfig();
  const hosts = sandboxInfo().hosts;
  const beta = hosts[1]!;
  const gamma = hosts[2]!;

  beforeAll(async () => {
    const run = await nexus(["-c", config, "deploy", "--release-id", uniqueRelease("drain")]);
    expect(run.exitCode, run.all).toBe(0);
  });

  it("while drained no request through the LB reaches the server; the file is otherwise unchanged", async () => {
    const original = readUpstream();
    const drain = await nexus(["-c", config, "drain", "nexus-beta"]);
    expect(drain.exitCode, drain.all).toBe(0);
    // What the drain waited for: nothing was in flight, and the retired workers had nothing to serve.
    expect(drain.stderr).toMatch(
      /nexus-beta: drain ok \([^)]*\): out of rotation: in-flight requests done in \d+\.\d\ds/,
    );

    const drained = readUpstream();
    const before = original.split("\n");
    const after = drained.split("\n");
    expect(after).toHaveLength(before.length);
    const changed = before.flatMap((line, i) => (line === after[i] ? [] : [i]));
    expect(changed).toHaveLength(1);
    const index = changed[0] as number;
    expect(before[index]).toContain(`${beta.address}:3000`);
    expect(after[index]).toContain(`${beta.address}:3000`);
    expect(after[index]).toMatch(/\bdown;/);

    const answers = await throughLb(40);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.some((a) => a.server === "nexus-beta")).toBe(false);
    expect(new Set(answers.map((a) => a.server))).toEqual(new Set(["nexus-alpha", "nexus-gamma"]));

    const status = await nexus(["-c", config, "status"]);
    expect(status.stdout).toMatch(/nexus-beta\s+drained/);

    const enable = await nexus(["-c", config, "enable", "nexus-beta"]);
    expect(enable.exitCode, enable.all).toBe(0);
    expect(readUpstream()).toBe(original);
    const back = await throughLbUntilEach(["nexus-beta"]);
    expect(back.some((a) => a.server === "nexus-beta")).toBe(true);
  });

  it("a client that connected before the drain and has not sent its request yet holds the old Nginx worker: the drain waits for it, then says so", async () => {
    const short = writeConfig({ balancer: { drainTimeout: "1s" } });
    const lb = new URL(sandboxInfo().lb.url);
    // A preconnect, as browsers open them: connected, no request written. The worker that
    // accepted it keeps it through the reload and would route its request with the old list.
    const socket = net.connect(Number(lb.port), lb.hostname);
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    try {
      const drain = await nexus(["-c", short, "drain", "nexus-beta"]);
      expect(drain.exitCode, drain.all).toBe(0);
      expect(drain.stderr).toMatch(
        /warning: nexus-beta: .*\d+ Nginx worker\(s\) retired by the reload still running \(.*have not sent their request yet\) after the drain timeout/,
      );
      // The old worker still serves it: the request is answered, with the old server list.
      const reply = new Promise<string>((resolve) => {
        let text = "";
        socket.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
        });
        socket.once("close", () => resolve(text));
      });
      // write, not end: a client that half-closes is "gone" to Nginx, which drops the request (499).
      socket.write(`GET / HTTP/1.1\r\nHost: ${lb.host}\r\nConnection: close\r\n\r\n`);
      expect(await reply).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      socket.destroy();
      expect((await nexus(["-c", short, "enable", "nexus-beta"])).exitCode).toBe(0);
    }
  });

  it("refuses to drain below the capacity floor unless forced", async () => {
    const original = readUpstream();
    try {
      expect((await nexus(["-c", config, "drain", "nexus-alpha"])).exitCode).toBe(0);
      expect((await nexus(["-c", config, "drain", "nexus-beta"])).exitCode).toBe(0);
      const refused = await nexus(["-c", config, "drain", "nexus-gamma"]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain("nexus-gamma is the last server in rotation");
      expect(refused.stderr).toContain("pass --force");
      const gammaLine = readUpstream()
        .split("\n")
        .find((line) => line.includes(`${gamma.address}:3000`));
      expect(gammaLine).not.toMatch(/\bdown\b/);
    } finally {
      // Back in rotation whatever failed above: the files after this one share the sandbox.
      await nexus(["-c", config, "enable", "nexus-alpha"]);
      await nexus(["-c", config, "enable", "nexus-beta"]);
    }
    expect(readUpstream()).toBe(original);
  });

  it("an unknown server is a usage error naming it", async () => {
    const run = await nexus(["-c", config, "drain", "nexus-omega"]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('unknown server "nexus-omega"');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
