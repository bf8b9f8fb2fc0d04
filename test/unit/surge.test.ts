import { describe, expect, it } from "vitest";
import {
  addressChangeRefused,
  setServerAddress as haproxyAddress,
} from "../../src/balancer/haproxy/runtime-api.js";
import { parseServersState } from "../../src/balancer/haproxy/stats.js";
import { listUpstreamServers, setServerAddress } from "../../src/balancer/nginx/upstream.js";
import { parseSurgePorts, surgePortsItem } from "../../src/check/surge.js";
import { type Config, resolveConfig, type ServerConfig, withPort } from "../../src/config/load.js";
import { makePlan, noCapacity } from "../../src/deploy/plan.js";
import type { DeployEvent } from "../../src/events/events.js";
import { nextPort, parseLivePort } from "../../src/remote/live-port.js";
import type { FleetOps, SurgeOps } from "../../src/rollout/fleet-ops.js";
import { type RollOptions, roll } from "../../src/rollout/roll.js";
import { FakeBalancer } from "../fixtures/balancer.js";

const NAMES = ["alpha", "beta", "gamma"];

function config(
  rolling: Record<string, unknown> = {},
  app: Record<string, unknown> = {},
  names = NAMES,
): Config {
  return resolveConfig(
    {
      app: { name: "api", ...app },
      servers: names.map((name, i) => ({ name, host: `10.0.0.${i + 1}` })),
      deployPath: "/srv/api",
      balancer: { host: names[0], upstreamFile: "/etc/nginx/conf.d/api.conf" },
      rolling,
    },
    "deploy.config.json",
    "/project",
  );
}

describe("surge ports", () => {
  it("alternates between app.port and app.surgePort (port + 1 by default)", () => {
    const c = config({ strategy: "surge" });
    expect(c.app.surgePort).toBe(3001);
    expect(c.servers[0]?.surgeUpstream).toBe("10.0.0.1:3001");
    expect(nextPort(undefined, c.app)).toBe(3001);
    expect(nextPort(3001, c.app)).toBe(3000);
    expect(nextPort(3000, c.app)).toBe(3001);
    expect(nextPort(4000, c.app)).toBe(3001);
  });

  it("reads the live-port record, and nothing that is not a port", () => {
    expect(parseLivePort("3001\n")).toBe(3001);
    expect(parseLivePort("")).toBeUndefined();
    expect(parseLivePort("70000")).toBeUndefined();
    expect(parseLivePort("30 01")).toBeUndefined();
  });

  it("refuses a surgePort equal to app.port, and a health.port of its own under surge", () => {
    expect(() => config({}, { port: 3000, surgePort: 3000 })).toThrow(
      /app\.surgePort: 3000 is app\.port too/,
    );
    expect(() =>
      resolveConfig(
        {
          app: { name: "api" },
          servers: [{ name: "a", host: "10.0.0.1" }],
          balancer: { host: "a", upstreamFile: "/x.conf" },
          health: { port: 9000 },
          rolling: { strategy: "surge" },
        },
        "deploy.config.json",
        "/project",
      ),
    ).toThrow(/health\.port: the surge strategy/);
  });

  it("moves an address to another port, IPv6 included", () => {
    expect(withPort("10.0.0.2:3000", 3001)).toBe("10.0.0.2:3001");
    expect(withPort("[::1]:3000", 3001)).toBe("[::1]:3001");
  });
});

describe("the Nginx upstream line's port", () => {
  const FILE =
    "server 10.0.0.1:3000 max_fails=3 fail_timeout=30s;\n# keep me\nserver 10.0.0.2:3000 max_fails=3 down;\n";

  it("changes only the address word, its parameters (down included) kept", () => {
    const moved = setServerAddress(FILE, "10.0.0.2:3000", "10.0.0.2:3001");
    expect(moved.changed).toBe(true);
    expect(moved.text).toBe(FILE.replace("10.0.0.2:3000", "10.0.0.2:3001"));
    expect(listUpstreamServers(moved.text).find((s) => s.address === "10.0.0.2:3001")?.down).toBe(true);
    expect(setServerAddress(moved.text, "10.0.0.2:3001", "10.0.0.2:3000").text).toBe(FILE);
  });

  it("leaves the text as it is when the address is already there, and refuses a missing one or a taken one", () => {
    expect(setServerAddress(FILE, "10.0.0.1:3000", "10.0.0.1:3000")).toEqual({ text: FILE, changed: false });
    expect(() => setServerAddress(FILE, "10.0.0.9:3000", "10.0.0.9:3001")).toThrow(/not found/);
    expect(() => setServerAddress(FILE, "10.0.0.1:3000", "10.0.0.2:3000")).toThrow(/already listed/);
    expect(() => setServerAddress(FILE, "10.0.0.1:3000", "10.0.0.1:3001; evil")).toThrow(
      /Invalid server address/,
    );
  });
});

describe("HAProxy's address switch", () => {
  it("builds `set server … addr … port …`", () => {
    expect(haproxyAddress("app", "s1", "127.0.0.11:3001")).toBe(
      "set server app/s1 addr 127.0.0.11 port 3001",
    );
    expect(haproxyAddress("app", "s1", "[::1]:3001")).toBe("set server app/s1 addr ::1 port 3001");
    expect(() => haproxyAddress("app", "s1", "nohost")).toThrow(/host:port/);
  });

  it("tells HAProxy's success sentences from a refusal", () => {
    expect(
      addressChangeRefused(
        "IP changed from '127.0.0.11' to '127.0.0.11', port changed from '3000' to '3001' by 'stats socket command'.",
      ),
    ).toBeUndefined();
    expect(
      addressChangeRefused("no need to change the addr, port changed from '3000' to '3001'"),
    ).toBeUndefined();
    expect(addressChangeRefused("")).toBeUndefined();
    expect(addressChangeRefused("No such server.")).toBe("No such server.");
  });

  it("reads each server's port from `show servers state`", () => {
    const text =
      "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n3 app 1 s1 127.0.0.11 2 0 1 1 5 6 3 4 6 0 0 0 - 3001\n";
    expect(parseServersState(text)[0]?.port).toBe(3001);
  });
});

describe("a drain batch with no capacity", () => {
  it("is named for a fleet of one and a batch as large as the fleet, never under surge", () => {
    const one = config({}, {}, ["solo"]);
    expect(noCapacity(one, makePlan(one, "r2").batches[0] ?? [])).toMatch(/leaves no server in rotation/);
    const three = config({ batchSize: 3, minInRotation: 0 });
    expect(noCapacity(three, three.servers)).toMatch(/alpha, beta, gamma/);
    expect(noCapacity(three, three.servers.slice(0, 1))).toBeUndefined();
    const surge = config({ strategy: "surge" }, {}, ["solo"]);
    expect(noCapacity(surge, surge.servers)).toBeUndefined();
  });
});

/** Servers with two processes each: which port serves (the balancer decides) and which release runs where. */
class SurgeServers implements FleetOps {
  readonly live = new Map<string, number | undefined>();
  /** Per server, port → release of the processes running. */
  readonly processes = new Map<string, Map<number, string>>(NAMES.map((n) => [n, new Map([[3000, "r1"]])]));
  readonly current = new Map(NAMES.map((n) => [n, "r1"]));
  readonly failing = new Set<string>();
  readonly surge: SurgeOps;
  /** Processes stopped, in order ("alpha:3000"); a stop waits for `stopsHeld` first. */
  readonly stopped: string[] = [];
  stopsHeld: Promise<void> = Promise.resolve();
  /** How long each stop takes once let through (ms). */
  stopMs = 0;
  /** Servers started, in order. */
  readonly started: string[] = [];

  constructor(readonly balancer: FakeBalancer) {
    this.surge = {
      livePort: async (server) => this.live.get(server.name),
      start: async (server, release, port) => {
        // Whatever happens, the balancer still sends this server's traffic to a running process.
        expect(this.balancer.inRotation.get(server.name)).toBe(true);
        expect(this.serving(server.name)).toBeDefined();
        // Never on a port a process still holds (an old one being retired in the background).
        expect(this.processes.get(server.name)?.has(port), `${server.name}:${port} is free`).toBe(false);
        this.current.set(server.name, release);
        this.processes.get(server.name)?.set(port, release);
        this.started.push(`${server.name}:${port}`);
        return !this.failing.has(`${server.name}@${release}`);
      },
      record: async (server, port) => {
        this.live.set(server.name, port);
      },
      stop: async (server, port) => {
        await this.stopsHeld;
        if (this.stopMs > 0) await new Promise((resolve) => setTimeout(resolve, this.stopMs));
        this.processes.get(server.name)?.delete(port ?? 3000);
        this.stopped.push(`${server.name}:${port ?? 3000}`);
      },
      point: async (server, release) => {
        this.current.set(server.name, release);
      },
    };
  }

  async activate(): Promise<boolean> {
    throw new Error("the surge strategy never restarts a serving process");
  }
  async healthy(): Promise<boolean> {
    return true;
  }
  async stop(): Promise<void> {}
  async persist(): Promise<void> {}

  /** The release the balancer's address for the server reaches. */
  serving(name: string): string | undefined {
    const port = Number((this.balancer.addresses.get(name) ?? `${name}:3000`).split(":").at(-1));
    return this.processes.get(name)?.get(port);
  }
}

function surgeSetup(extra: Partial<RollOptions> = {}) {
  const c = config({ strategy: "surge" });
  const balancer = new FakeBalancer("lb", NAMES);
  balancer.sharesChanges = false;
  const servers = new SurgeServers(balancer);
  const events: DeployEvent[] = [];
  const plan = makePlan(c, "r2");
  const options: RollOptions = {
    config: c,
    ops: servers,
    emit: (e) => events.push(e),
    signal: new AbortController().signal,
    batches: plan.batches,
    target: () => "r2",
    fallback: () => "r1",
    minInRotation: plan.minInRotation,
    onFailure: c.rolling.onFailure,
    ...extra,
  };
  return { balancer, servers, events, options };
}

describe("the surge strategy", () => {
  it("starts beside, switches the balancer, stops the old process: nothing ever leaves rotation", async () => {
    const { balancer, servers, options } = surgeSetup();
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    for (const name of NAMES) {
      expect(servers.serving(name)).toBe("r2");
      expect(servers.live.get(name)).toBe(3001);
      expect([...(servers.processes.get(name)?.keys() ?? [])]).toEqual([3001]);
    }
    expect(balancer.changes.every((c) => c.drain.length === 0)).toBe(true);
    expect(balancer.changes.map((c) => c.move)).toEqual([
      ["alpha>10.0.0.1:3001"],
      ["beta>10.0.0.2:3001"],
      ["gamma>10.0.0.3:3001"],
    ]);
  });

  it("counts the connections the old process still held at the drain timeout: its stop closes them", async () => {
    const { balancer, events, options } = surgeSetup();
    balancer.open = 2;
    balancer.connections = 2;
    const out = await roll(options);
    expect(out.outcome).toBe("success");
    expect(out.rows.map((r) => r.connectionsCut)).toEqual(NAMES.map(() => ({ byBalancer: 0, byRestart: 2 })));
    const drains = events.filter((e) => e.type === "step" && e.step === "drain" && e.status === "done");
    expect(drains.map((e) => e.type === "step" && e.message)).toEqual(
      NAMES.map(
        () =>
          "2 connection(s) still open at the drain timeout: 2 left to the restart (the app closes them on SIGINT)",
      ),
    );
  });

  it("retires old processes while the next batch starts, and ends the roll only once they are stopped", async () => {
    const { servers, options } = surgeSetup();
    let release = () => {};
    servers.stopsHeld = new Promise((resolve) => {
      release = resolve;
    });
    let ended = false;
    const rolling = roll(options).then((out) => {
      ended = true;
      return out;
    });
    // Every batch started while no old process could stop yet.
    for (let i = 0; i < 100 && servers.started.length < 3; i++) await new Promise((r) => setTimeout(r, 1));
    expect(servers.started).toEqual(["alpha:3001", "beta:3001", "gamma:3001"]);
    expect(servers.stopped).toEqual([]);
    await new Promise((r) => setTimeout(r, 10));
    expect(ended).toBe(false);
    release();
    const out = await rolling;
    expect(out.outcome).toBe("success");
    expect(servers.stopped.sort()).toEqual(["alpha:3000", "beta:3000", "gamma:3000"]);
  });

  it("a move back waits for the old process to leave the port it starts on", async () => {
    const { servers, options } = surgeSetup();
    servers.failing.add("gamma@r2");
    let release = () => {};
    servers.stopsHeld = new Promise((resolve) => {
      release = resolve;
    });
    setTimeout(() => release(), 20);
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    // The fake's start refuses a port still held: alpha and beta went back to 3000 once it was free.
    expect(out.rows.map((r) => [r.server, r.result, r.release])).toEqual([
      ["alpha", "rolled back", "r1"],
      ["beta", "rolled back", "r1"],
      ["gamma", "rolled back", "r1"],
    ]);
    for (const name of NAMES) expect(servers.serving(name)).toBe("r1");
  });

  it("the old processes a move back leaves retiring are stopped before the roll ends", async () => {
    const { servers, options } = surgeSetup();
    servers.failing.add("gamma@r2");
    servers.stopMs = 20;
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    for (const name of ["alpha", "beta"]) {
      expect(servers.serving(name)).toBe("r1");
      expect([...(servers.processes.get(name)?.keys() ?? [])]).toEqual([3000]);
    }
    expect(servers.stopped).toEqual(expect.arrayContaining(["alpha:3001", "beta:3001"]));
  });

  it("a gate that fails leaves the balancer untouched, stops the new process, and points current back", async () => {
    const { balancer, servers, options } = surgeSetup();
    servers.failing.add("beta@r2");
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    // rollback-all: alpha surged back to r1 on app.port; beta never left its old process.
    expect(out.rows.map((r) => [r.server, r.result, r.release])).toEqual([
      ["alpha", "rolled back", "r1"],
      ["beta", "rolled back", "r1"],
      ["gamma", "not reached", undefined],
    ]);
    expect(servers.serving("alpha")).toBe("r1");
    expect(servers.live.get("alpha")).toBe(3000);
    expect(servers.serving("beta")).toBe("r1");
    expect(servers.current.get("beta")).toBe("r1");
    expect([...(servers.processes.get("beta")?.keys() ?? [])]).toEqual([3000]);
    expect(balancer.changes.some((c) => c.move?.some((m) => m.startsWith("beta")))).toBe(false);
  });

  it("a balancer that refuses the switch leaves the old process serving", async () => {
    const { balancer, servers, options } = surgeSetup({ batches: [[config().servers[0] as ServerConfig]] });
    balancer.refuse();
    const out = await roll(options);
    expect(out.outcome).toBe("failed");
    expect(out.rows[0]).toMatchObject({ server: "alpha", result: "restored", release: "r1" });
    expect(servers.serving("alpha")).toBe("r1");
    expect(servers.current.get("alpha")).toBe("r1");
    expect([...(servers.processes.get("alpha")?.keys() ?? [])]).toEqual([3000]);
  });
});

describe("nexus check's surge ports", () => {
  const ports = { port: 3000, surgePort: 3001 };

  it("reads the record and the listening ports", () => {
    expect(parseSurgePorts("live 3001\nlisten 22\nlisten 3001\nlisten x\n")).toEqual({
      live: 3001,
      listening: [22, 3001],
    });
  });

  it("fails when the next surge's port is taken, or when nothing listens where the app should serve", () => {
    expect(surgePortsItem("a", { live: 3001, listening: [3001] }, ports, true)).toMatchObject({
      status: "ok",
    });
    expect(surgePortsItem("a", { listening: [3000, 3001] }, ports, false)).toMatchObject({
      status: "fail",
      detail: expect.stringContaining("port 3001"),
    });
    expect(surgePortsItem("a", { live: 3001, listening: [22] }, ports, true)).toMatchObject({
      status: "fail",
      fix: expect.stringContaining("process.env.PORT"),
    });
  });
});
