import { describe, expect, it } from "vitest";
import { HaproxyBalancer } from "../../src/balancer/haproxy/haproxy.js";
import type { ExecOptions, ExecResult, InteractiveRunner, RunningCommand } from "../../src/ssh/session.js";
import { server } from "../fixtures/balancer.js";

const [alpha, beta] = [server("alpha"), server("beta")];

const STATE_HEADER =
  "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight";
const STAT_HEADER =
  "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status";

/**
 * An HAProxy runtime API in memory, behind the runner nexus gives the driver: it answers the
 * interactive CLI spoken over the started command, as the real socket would, and takes the state
 * file's writes (exec).
 */
class FakeHaproxy implements InteractiveRunner {
  readonly name = "lb";
  admin = new Map<string, number>([
    ["alpha", 0],
    ["beta", 0],
  ]);
  sessions = new Map<string, number[]>();
  /** Run-time weights (srv_uweight), 1 when not set. */
  weights = new Map<string, number>();
  /** Ports of the lines: when set, `show servers state` has a srv_port column. */
  ports = new Map<string, number>();
  commands: string[] = [];
  /** Connections to the admin socket (commands started on the balancer host). */
  connections = 0;
  /** State file writes. */
  saved: string[] = [];
  code = 0;
  stateFileFails = false;
  refuseShutdown = false;
  /** A connection ends, unanswered, when it gets more commands than this (HAProxy's CLI timeout). */
  endAfter = Number.POSITIVE_INFINITY;
  /** Connections opened before the last `reload()`: their process is stopping. */
  private stoppingBefore = 0;
  /** beta's sessions in the process a reload replaced, one value per `show stat` there. */
  oldSessions: number[] = [0];
  /** The old process's last answer for beta, each time beta was put in maintenance. */
  oldAtMaint: (number | undefined)[] = [];
  private lastOld: number | undefined;

  /** A reload: the old process keeps its CLI connections, and says it is stopping. */
  reload(): void {
    this.stoppingBefore = this.connections;
  }
  onPoll?: () => void;
  /**
   * A frontend named like the backend, declared first: `show stat app …` then finds the frontend
   * (HAProxy looks a name up among every proxy), which has no server rows.
   */
  frontendNamedApp = false;

  private answer(command: string, connection: number): string {
    const old = connection <= this.stoppingBefore;
    if (command === "show info") return `Name: HAProxy\nPid: 7\nStopping: ${old ? 1 : 0}`;
    this.commands.push(command);
    const stat = /^show stat (\S+) 4 -1$/.exec(command)?.[1];
    if (old && stat === "-1") {
      const scur = this.oldSessions.length > 1 ? this.oldSessions.shift() : this.oldSessions[0];
      this.lastOld = scur;
      return [
        STAT_HEADER,
        "app,alpha,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP",
        `app,beta,0,0,${scur},0,,0,0,0,,0,,0,0,0,0,DRAIN`,
      ].join("\n");
    }
    const weight = /^set server app\/(\S+) weight (\d+)$/.exec(command);
    if (weight) {
      if (!this.admin.has(weight[1] as string)) return "No such server.";
      this.weights.set(weight[1] as string, Number(weight[2]));
      return "";
    }
    const addr = /^set server app\/(\S+) addr (\S+) port (\d+)$/.exec(command);
    if (addr) {
      const before = this.ports.get(addr[1] as string);
      this.ports.set(addr[1] as string, Number(addr[3]));
      return `no need to change the addr, port changed from '${before}' to '${addr[3]}' by 'stats socket command'`;
    }
    const set = /^set server app\/(\S+) state (\S+)$/.exec(command);
    if (set) {
      const name = set[1] as string;
      if (!this.admin.has(name)) return "No such server.";
      if (set[2] === "maint" && name === "beta") this.oldAtMaint.push(this.lastOld);
      this.admin.set(name, { ready: 0, drain: 8, maint: 1 }[set[2] as "ready"] ?? 0);
      return "";
    }
    const shutdown = /^shutdown sessions server app\/(\S+)$/.exec(command);
    if (shutdown) {
      if (this.refuseShutdown) return "Permission denied";
      this.sessions.set(shutdown[1] as string, [0]);
      return "";
    }
    if (command === "show servers state app" || command === "show servers state") {
      // Lines named "<name>-surge" share their server's address, as standby lines do.
      const address = (n: string) => `10.0.0.${[...this.admin.keys()].indexOf(n.replace(/-surge$/, ""))}`;
      const port = (n: string) => (this.ports.size > 0 ? ` ${this.ports.get(n)}` : "");
      return [
        `${STATE_HEADER}${this.ports.size > 0 ? " srv_port" : ""}`,
        ...[...this.admin].map(
          ([n, a], i) => `3 app ${i + 1} ${n} ${address(n)} 2 ${a} ${this.weights.get(n) ?? 1} 1${port(n)}`,
        ),
      ].join("\n");
    }
    if (stat === "app" && this.frontendNamedApp) return STAT_HEADER;
    if (stat === "3" || stat === "app" || stat === "-1") {
      this.onPoll?.();
      const rows = [...this.admin].map(([n]) => {
        const queue = this.sessions.get(n) ?? [0];
        const scur = queue.length > 1 ? (queue.shift() as number) : (queue[0] as number);
        return `app,${n},0,0,${scur},0,,0,0,0,,0,,0,0,0,0,UP`;
      });
      return [STAT_HEADER, ...rows].join("\n");
    }
    return "Unknown command.";
  }

  start(_command: string, onStdout?: (text: string) => void): RunningCommand {
    const connection = ++this.connections;
    let finish: (result: ExecResult) => void = () => {};
    const result = new Promise<ExecResult>((resolve) => {
      finish = resolve;
    });
    const end = (result: ExecResult) => queueMicrotask(() => finish(result));
    if (this.code) {
      end({ code: this.code, stdout: "", stderr: "no writable HAProxy admin socket at /s\n" });
      return { send() {}, end() {}, result };
    }
    let input = "";
    let answered = 0;
    return {
      send: (text) => {
        input += text;
        for (let i = input.indexOf("\n"); i >= 0; i = input.indexOf("\n")) {
          const line = input.slice(0, i);
          input = input.slice(i + 1);
          if (line === "prompt") {
            queueMicrotask(() => onStdout?.("\n> "));
            continue;
          }
          if (++answered > this.endAfter) return end({ code: 0, stdout: "", stderr: "" });
          const reply = `${this.answer(line, connection)}\n\n> `;
          // In two pieces, as a socket may deliver it.
          queueMicrotask(() => onStdout?.(reply.slice(0, 5)));
          queueMicrotask(() => onStdout?.(reply.slice(5)));
        }
      },
      end: () => end({ code: 0, stdout: "", stderr: "" }),
      result,
    };
  }

  async exec(_script: string, options?: ExecOptions): Promise<ExecResult> {
    if (this.stateFileFails)
      return { code: 2, stdout: "", stderr: "sh: 2: cannot create /state.nexus-tmp: Permission denied" };
    this.saved.push(options?.stdin ?? "");
    return { code: 0, stdout: "", stderr: "" };
  }

  async run(script: string): Promise<string> {
    return (await this.exec(script)).stdout;
  }
}

function driver(fake: FakeHaproxy, warnings: string[] = [], shown: string[] = []) {
  return new HaproxyBalancer(fake, {
    socket: "/s",
    backend: "app",
    serverName: (s) => s.name,
    stateFile: "/state",
    pollInterval: 1,
    onWarning: (message) => warnings.push(message),
    onCommand: (server, command) => shown.push(`${server}: ${command}`),
  });
}

describe("HAProxy driver", () => {
  it("enables before it drains, over one admin socket connection, and reads the live state", async () => {
    const fake = new FakeHaproxy();
    fake.admin.set("alpha", 1);
    const shown: string[] = [];
    const haproxy = driver(fake, [], shown);
    await haproxy.apply({ enable: [alpha], drain: [beta] });
    // --verbose shows the changes, not the reads.
    expect(shown).toEqual([
      "lb: HAProxy admin socket: set server app/alpha state ready; set server app/beta state drain",
    ]);
    // The backend's lines read once (has it standby lines?), then sent together: the changes, and
    // the read for the state file.
    expect(fake.commands).toEqual([
      "show servers state app",
      "set server app/alpha state ready",
      "set server app/beta state drain",
      "show servers state",
    ]);
    expect(await haproxy.state([alpha, beta, server("gamma")])).toEqual([
      { server: "alpha", upstream: "app/alpha", present: true, inRotation: true },
      { server: "beta", upstream: "app/beta", present: true, inRotation: false },
      { server: "gamma", upstream: "app/gamma", present: false, inRotation: false },
    ]);
    expect(fake.connections).toBe(1);
    // The whole runtime state, saved once for the change, off its path: close waits for it.
    await haproxy.close();
    expect(fake.saved).toHaveLength(1);
    expect(fake.saved[0]).toMatch(/^1\n# be_id .*\n3 app 2 beta 10\.0\.0\.1 2 8 1 1\n$/s);
  });

  describe("a surge switch to the standby line (<name>-surge)", () => {
    const standbyFake = () => {
      const fake = new FakeHaproxy();
      fake.admin = new Map([
        ["alpha", 0],
        ["alpha-surge", 1],
      ]);
      fake.weights.set("alpha-surge", 0);
      fake.ports.set("alpha", 3000).set("alpha-surge", 3001);
      return fake;
    };

    it("readies the standby line and drains the live one; waitLeft retires that to maint, weight 0", async () => {
      const fake = standbyFake();
      const warnings: string[] = [];
      const haproxy = driver(fake, warnings);
      expect((await haproxy.state([alpha]))[0]).toMatchObject({ inRotation: true, address: "10.0.0.0:3000" });
      fake.commands.length = 0;
      await haproxy.apply({ move: [{ server: alpha, to: "10.0.0.0:3001" }], enable: [alpha] });
      // Not one `addr` change: the line that held connections to the old process is never picked again.
      expect(fake.commands.filter((c) => c.startsWith("set server"))).toEqual([
        "set server app/alpha-surge weight 1",
        "set server app/alpha-surge state ready",
        "set server app/alpha state drain",
      ]);
      expect((await haproxy.state([alpha]))[0]).toMatchObject({ inRotation: true, address: "10.0.0.0:3001" });
      expect(await haproxy.waitLeft(alpha, "10.0.0.0:3000", 60_000)).toEqual({ drained: true, open: 0 });
      expect(fake.admin.get("alpha")).toBe(1);
      expect(fake.weights.get("alpha")).toBe(0);
      expect(warnings).toEqual([]);

      // The next switch goes the other way; a drain of the server drains the line now live.
      fake.commands.length = 0;
      await haproxy.apply({ move: [{ server: alpha, to: "10.0.0.0:3000" }], enable: [alpha] });
      expect(fake.commands.filter((c) => c.startsWith("set server"))).toEqual([
        "set server app/alpha weight 1",
        "set server app/alpha state ready",
        "set server app/alpha-surge state drain",
      ]);
      await haproxy.waitLeft(alpha, "10.0.0.0:3001", 60_000);
      await haproxy.apply({ drain: [alpha] });
      expect(await haproxy.waitDrained(alpha, 60_000)).toEqual({ drained: true, open: 0 });
      expect(fake.admin.get("alpha")).toBe(1);
      expect(fake.weights.get("alpha")).toBe(1);
      expect((await haproxy.state([alpha]))[0]).toMatchObject({
        inRotation: false,
        address: "10.0.0.0:3000",
      });
      await haproxy.apply({ enable: [alpha] });
      expect((await haproxy.state([alpha]))[0]).toMatchObject({ inRotation: true, address: "10.0.0.0:3000" });
      await haproxy.close();
    });

    it("moves a server left drained by an operator without putting it in rotation", async () => {
      const fake = standbyFake();
      fake.admin.set("alpha", 1);
      const haproxy = driver(fake);
      await haproxy.apply({ move: [{ server: alpha, to: "10.0.0.0:3001" }] });
      expect((await haproxy.state([alpha]))[0]).toMatchObject({
        inRotation: false,
        address: "10.0.0.0:3001",
      });
      expect(fake.weights.get("alpha")).toBe(0);
      await haproxy.close();
    });

    it("names the servers whose standby line is missing (nexus check, under the surge strategy)", async () => {
      const fake = standbyFake();
      const haproxy = driver(fake);
      expect(await haproxy.serversWithoutStandby([alpha])).toEqual([]);
      fake.admin.set("beta", 0);
      expect(await haproxy.serversWithoutStandby([alpha, beta, server("omega")])).toEqual(["beta"]);
      await haproxy.close();
    });

    it("without a standby line, re-addresses the one line and says what that risks, once", async () => {
      const fake = new FakeHaproxy();
      fake.ports.set("alpha", 3000).set("beta", 3000);
      const warnings: string[] = [];
      const haproxy = driver(fake, warnings);
      await haproxy.apply({
        move: [
          { server: alpha, to: "10.0.0.0:3001" },
          { server: beta, to: "10.0.0.1:3001" },
        ],
        enable: [alpha, beta],
      });
      expect(fake.commands.filter((c) => c.startsWith("set server app/alpha"))).toEqual([
        "set server app/alpha addr 10.0.0.0 port 3001",
        "set server app/alpha state ready",
      ]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/no standby line alpha-surge.*can be reset/);
      await haproxy.close();
    });
  });

  it("waits until the server's sessions reach 0, then puts it in maintenance", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [2, 1, 0]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    // 3 polls until none is left, maint, and one more poll: none came in just before maint.
    expect(fake.commands.filter((c) => c.startsWith("show stat"))).toHaveLength(4);
    expect(fake.commands.filter((c) => c.startsWith("set server"))).toEqual([
      "set server app/beta state drain",
      "set server app/beta state maint",
    ]);
    expect(fake.admin.get("beta")).toBe(1);
    expect(fake.connections).toBe(1);
    await haproxy.close();
    expect(fake.saved).toHaveLength(2);
  });

  it("waits again for a session let in just before maintenance", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [0, 1, 0]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    expect(fake.commands.filter((c) => c.startsWith("show stat"))).toHaveLength(3);
    expect(fake.commands.filter((c) => c === "set server app/beta state maint")).toHaveLength(1);
  });

  it("puts the server in maintenance after the timeout too, and says how many sessions were left", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [3]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 0)).toEqual({ drained: false, open: 3, connections: 3 });
    expect(fake.admin.get("beta")).toBe(1);
    // Not asked to: the sessions stay (`nexus drain`); the deploy's restart would cut them.
    expect(fake.commands.filter((c) => c.startsWith("shutdown"))).toEqual([]);
  });

  it("with shutAtTimeout, shuts the sessions left at the timeout through the runtime API, after maintenance", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [3]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 0, { shutAtTimeout: true })).toEqual({
      drained: false,
      open: 3,
      connections: 3,
      shut: 3,
    });
    expect(fake.commands.filter((c) => /^(set server|shutdown)/.test(c))).toEqual([
      "set server app/beta state drain",
      "set server app/beta state maint",
      "shutdown sessions server app/beta",
    ]);
    await haproxy.close();
  });

  it("with shutAtTimeout, a drained server's sessions are not touched", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [1, 0]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 60_000, { shutAtTimeout: true })).toEqual({
      drained: true,
      open: 0,
    });
    expect(fake.commands.filter((c) => c.startsWith("shutdown"))).toEqual([]);
  });

  it("warns when HAProxy refuses the shutdown, and leaves the sessions to the restart", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [2]);
    fake.refuseShutdown = true;
    const warnings: string[] = [];
    const haproxy = driver(fake, warnings);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 0, { shutAtTimeout: true })).toEqual({
      drained: false,
      open: 2,
      connections: 2,
    });
    expect(warnings).toEqual([
      expect.stringMatching(
        /HAProxy refused "shutdown sessions" for app\/beta: Permission denied: the restart closes them instead/,
      ),
    ]);
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

  it("sends a batch again on a new connection when HAProxy ended the old one (its CLI timeout)", async () => {
    const fake = new FakeHaproxy();
    // `show info` and the lines' read, then the drain, the state file's read and `show info`; then
    // the connection ends.
    fake.endAfter = 5;
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(fake.admin.get("beta")).toBe(8);
    expect((await haproxy.state([beta]))[0]?.inRotation).toBe(false);
    // The read of the state went unanswered on the first connection, and was answered on a second.
    expect(fake.connections).toBe(2);
    expect(fake.commands).toEqual([
      "show servers state app",
      "set server app/beta state drain",
      "show servers state",
      "show servers state app",
    ]);
    await haproxy.close();
    expect(fake.saved).toHaveLength(1);
  });

  it("after a reload, leaves the old process (stopping, it keeps its CLI connections) for the new one", async () => {
    const fake = new FakeHaproxy();
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    fake.reload();
    await haproxy.apply({ enable: [beta] });
    expect(fake.connections).toBe(2);
    // Sent to the old process, then again to the new one.
    expect(fake.commands.filter((c) => c === "set server app/beta state ready")).toHaveLength(2);
    await haproxy.close();
  });

  it("a drain across a reload waits for the sessions the old process still serves too", async () => {
    const fake = new FakeHaproxy();
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    fake.reload();
    // The new process has none; the old one finishes two requests, then has none.
    fake.oldSessions = [2, 1, 0];
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    // Maintenance only once the old process had none either.
    expect(fake.oldAtMaint).toEqual([0]);
    expect(fake.admin.get("beta")).toBe(1);
    await haproxy.close();
  });

  it("a batch's drains across a reload: one that ends does not stop the others counting the old process", async () => {
    const fake = new FakeHaproxy();
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [alpha, beta] });
    fake.reload();
    // The old process has nothing for alpha; it finishes two requests of beta's.
    fake.oldSessions = [2, 2, 2, 1, 0];
    const waits = await Promise.all([haproxy.waitDrained(alpha, 60_000), haproxy.waitDrained(beta, 60_000)]);
    expect(waits).toEqual([
      { drained: true, open: 0 },
      { drained: true, open: 0 },
    ]);
    expect(fake.oldAtMaint).toEqual([0]);
    await haproxy.close();
  });

  it("a wait stops, and does not drain again, once nexus itself put the server back in rotation", async () => {
    const fake = new FakeHaproxy();
    fake.sessions.set("beta", [1]);
    const warnings: string[] = [];
    const haproxy = driver(fake, warnings);
    await haproxy.apply({ drain: [beta] });
    let polls = 0;
    fake.onPoll = () => {
      // The batch's drain failed elsewhere: the roll puts beta back while this wait still polls.
      if (++polls === 2) void haproxy.apply({ enable: [beta] });
    };
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({
      drained: false,
      open: 1,
      detail: "put back in rotation while its drain was waited for",
    });
    expect(fake.admin.get("beta")).toBe(0);
    expect(fake.commands.filter((c) => c.startsWith("set server"))).toEqual([
      "set server app/beta state drain",
      "set server app/beta state ready",
    ]);
    expect(warnings).toEqual([]);
    await haproxy.close();
  });

  it("reads the backend's servers by its id: a frontend may have the backend's name", async () => {
    const fake = new FakeHaproxy();
    fake.frontendNamedApp = true;
    fake.sessions.set("beta", [1, 0]);
    const haproxy = driver(fake);
    await haproxy.apply({ drain: [beta] });
    expect(await haproxy.waitDrained(beta, 60_000)).toEqual({ drained: true, open: 0 });
    expect(fake.commands.filter((c) => c.startsWith("show stat"))).toEqual(
      Array.from({ length: 3 }, () => "show stat 3 4 -1"),
    );
    expect(await haproxy.showStat()).toMatch(/^app,alpha,/m);
    await haproxy.close();
  });

  it("warns, and keeps the change, when the state file cannot be written", async () => {
    const fake = new FakeHaproxy();
    fake.stateFileFails = true;
    const warnings: string[] = [];
    const haproxy = driver(fake, warnings);
    await haproxy.apply({ drain: [beta] });
    expect(fake.admin.get("beta")).toBe(8);
    await haproxy.close();
    expect(warnings).toEqual([
      "cannot write the HAProxy state file /state (balancer.stateFile): a restart of HAProxy would forget this change: sh: 2: cannot create /state.nexus-tmp: Permission denied",
    ]);
  });
});
