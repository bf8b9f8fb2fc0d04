import { describe, expect, it } from "vitest";
import { HaproxyBalancer } from "../../src/balancer/haproxy/haproxy.js";
import type { CommandRunner, ExecResult } from "../../src/ssh/session.js";
import { server } from "../fixtures/balancer.js";

const [alpha, beta] = [server("alpha"), server("beta")];

const STATE_HEADER =
  "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight";
const STAT_HEADER =
  "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status";

/**
 * An HAProxy runtime API in memory, behind the CommandRunner nexus gives the driver: it answers the
 * `hap '<command>'` lines of the generated script, as the real socket would.
 */
class FakeHaproxy implements CommandRunner {
  readonly name = "lb";
  admin = new Map<string, number>([
    ["alpha", 0],
    ["beta", 0],
  ]);
  sessions = new Map<string, number[]>();
  commands: string[] = [];
  /** Round trips to the balancer host. */
  execs = 0;
  code = 0;
  stateFileFails = false;
  onPoll?: () => void;
  /** scur per server in the last `show stat` answer, for the drain poll's own test of it. */
  private lastSessions = new Map<string, number>();

  private answer(command: string): string {
    this.commands.push(command);
    const set = /^set server app\/(\S+) state (\S+)$/.exec(command);
    if (set) {
      const name = set[1] as string;
      if (!this.admin.has(name)) return "No such server.";
      this.admin.set(name, { ready: 0, drain: 8, maint: 1 }[set[2] as "ready"] ?? 0);
      return "";
    }
    if (command === "show servers state app") {
      return [
        STATE_HEADER,
        ...[...this.admin].map(([n, a], i) => `3 app ${i + 1} ${n} 10.0.0.${i} 2 ${a} 1 1`),
      ].join("\n");
    }
    if (command === "show stat app 4 -1") {
      this.onPoll?.();
      const rows = [...this.admin].map(([n]) => {
        const queue = this.sessions.get(n) ?? [0];
        const scur = queue.length > 1 ? (queue.shift() as number) : (queue[0] as number);
        this.lastSessions.set(n, scur);
        return `app,${n},0,0,${scur},0,,0,0,0,,0,,0,0,0,0,UP`;
      });
      return [STAT_HEADER, ...rows].join("\n");
    }
    return "Unknown command.";
  }

  async exec(script: string): Promise<ExecResult> {
    this.execs++;
    if (this.code) return { code: this.code, stdout: "", stderr: "no writable HAProxy admin socket at /s" };
    let stdout = "";
    const reply = (command: string) => `${this.answer(command)}\n\n\n@@nexus-haproxy-reply 0\n`;
    for (const line of script.split("\n")) {
      const plain = /^hap '([^']*)'; printf/.exec(line) ?? /^stat=\$\(hap '([^']*)'\)/.exec(line);
      if (plain) stdout += reply(plain[1] as string);
      // drainPollScript: maintenance in the same round trip once the server has no session.
      const ifIdle = /^if \[ "\$open" = 0 \]; then hap '(set server app\/(\S+) state maint)'/.exec(line);
      if (ifIdle && this.lastSessions.get(ifIdle[2] as string) === 0) stdout += reply(ifIdle[1] as string);
    }
    if (this.stateFileFails && script.includes("state_file="))
      stdout += "@@nexus-haproxy-state-file-failed\n";
    return { code: 0, stdout, stderr: "" };
  }

  async run(script: string): Promise<string> {
    return (await this.exec(script)).stdout;
  }
}

function driver(fake: FakeHaproxy, warnings: string[] = []) {
  return new HaproxyBalancer(fake, {
    socket: "/s",
    backend: "app",
    serverName: (s) => s.name,
    stateFile: "/state",
    pollInterval: 1,
    onWarning: (message) => warnings.push(message),
  });
}

describe("HAProxy driver", () => {
  it("enables before it drains, in one round trip, and reads the live state", async () => {
    const fake = new FakeHaproxy();
    fake.admin.set("alpha", 1);
    const haproxy = driver(fake);
    await haproxy.apply({ enable: [alpha], drain: [beta] });
    expect(fake.commands).toEqual(["set server app/alpha state ready", "set server app/beta state drain"]);
    expect(fake.execs).toBe(1);
    expect(await haproxy.state([alpha, beta, server("gamma")])).toEqual([
      { server: "alpha", upstream: "app/alpha", present: true, inRotation: true },
      { server: "beta", upstream: "app/beta", present: true, inRotation: false },
      { server: "gamma", upstream: "app/gamma", present: false, inRotation: false },
    ]);
  });

  it("waits until the server's sessions reach 0, then puts it in maintenance", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [2, 1, 0]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    expect(fake.commands.filter((c) => c.startsWith("show stat"))).toHaveLength(3);
    expect(fake.commands.at(-1)).toBe("set server app/beta state maint");
    expect(fake.admin.get("beta")).toBe(1);
    // 1 drain, 3 polls: the last one also set maint.
    expect(fake.execs).toBe(4);
  });

  it("puts the server in maintenance after the timeout too, and says how many sessions were left", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [3]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 0)).toEqual({ drained: false, open: 3 });
    expect(fake.admin.get("beta")).toBe(1);
  });

  it("drains again when HAProxy restarted while it waited (runtime state lost)", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [1, 1, 0]);
    const warnings: string[] = [];
    const haproxy = driver(fake, warnings);
    await haproxy.apply({ drain: [beta] });
    let polls = 0;
    fake.onPoll = () => {
      if (++polls === 2) fake.admin.set("beta", 0);
    };
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    expect(warnings).toEqual([
      "app/beta was back in rotation while draining (HAProxy restarted?): draining it again",
    ]);
    expect(fake.commands.filter((c) => c === "set server app/beta state drain")).toHaveLength(2);
    expect(fake.admin.get("beta")).toBe(1);
  });

  it("names a server HAProxy does not know, and a socket it cannot reach", async () => {
    const fake = new FakeHaproxy();
    await expect(driver(fake).apply({ drain: [server("omega")] })).rejects.toThrow(
      'lb: HAProxy refused "state drain" for app/omega: No such server.',
    );
    fake.code = 90;
    await expect(driver(fake).state([alpha])).rejects.toThrow("lb: no writable HAProxy admin socket at /s");
  });

  it("warns, and keeps the change, when the state file cannot be written", async () => {
    const fake = new FakeHaproxy();
    fake.stateFileFails = true;
    const warnings: string[] = [];
    await driver(fake, warnings).apply({ drain: [beta] });
    expect(fake.admin.get("beta")).toBe(8);
    expect(warnings[0]).toMatch(/^cannot write the HAProxy state file \/state \(balancer\.stateFile\)/);
  });
});
