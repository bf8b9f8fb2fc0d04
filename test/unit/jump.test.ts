import { describe, expect, it } from "vitest";
import { HandshakeLimiter } from "../../src/ssh/connect.js";
import {
  formatProxyJump,
  type Hop,
  type HopConnection,
  JumpPool,
  parseProxyJump,
  resolveHops,
} from "../../src/ssh/jump.js";

const context = { home: "/home/dev", localUser: "dev" };

describe("parseProxyJump", () => {
  it("reads hops as ssh does: [user@]host[:port], ssh:// URIs, IPv6 in brackets, commas between", () => {
    expect(parseProxyJump("ops@bastion.example.com:2222, ssh://jump2 ,[fd00::1]:22,root@10.0.0.1")).toEqual([
      { user: "ops", host: "bastion.example.com", port: 2222 },
      { host: "jump2" },
      { host: "fd00::1", port: 22 },
      { user: "root", host: "10.0.0.1" },
    ]);
    expect(parseProxyJump("none")).toEqual([]);
    expect(formatProxyJump(parseProxyJump("ssh://ops@b:2222,[fd00::1]:22"))).toBe("ops@b:2222,[fd00::1]:22");
  });

  it("names the field and the hop it cannot read", () => {
    expect(() => parseProxyJump("a b", "servers[1].proxyJump")).toThrow(
      /servers\[1\]\.proxyJump: "a b" is not a jump host/,
    );
    expect(() => parseProxyJump("host:70000")).toThrow(/not a jump host/);
    expect(() => parseProxyJump("a,,b")).toThrow(/not a jump host/);
  });
});

describe("resolveHops", () => {
  const text = `Host bastion
  HostName 203.0.113.7
  Port 2200
  User ops
  IdentityFile ~/.ssh/bastion
Host inner
  ProxyJump outer
Host outer
  HostName 198.51.100.1
Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a
`;

  it("takes each hop's HostName, Port, User and IdentityFile from the ssh config; what the hop spells out wins", () => {
    expect(resolveHops(parseProxyJump("bastion"), text, context)).toEqual([
      {
        label: "bastion",
        host: "203.0.113.7",
        port: 2200,
        user: "ops",
        identityFiles: ["/home/dev/.ssh/bastion"],
      },
    ]);
    expect(resolveHops(parseProxyJump("root@bastion:22"), text, context)[0]).toMatchObject({
      host: "203.0.113.7",
      port: 22,
      user: "root",
    });
  });

  it("a hop with no user logs in as the local user, as ssh does", () => {
    expect(resolveHops(parseProxyJump("plain.example"), "", context)[0]).toMatchObject({
      user: "dev",
      port: 22,
    });
  });

  it("reaches the first hop through its own ProxyJump, and refuses a loop", () => {
    expect(resolveHops(parseProxyJump("inner"), text, context).map((h) => h.host)).toEqual([
      "198.51.100.1",
      "inner",
    ]);
    expect(() => resolveHops(parseProxyJump("loop-a"), text, context)).toThrow(/more than 8 jump hosts/);
  });
});

/** A hop connection in memory: counts its forwards, can be dropped. */
function fakeHop(hop: Hop, log: string[]) {
  let alive = true;
  const connection: HopConnection = {
    forward: async (host, port) => {
      log.push(`${hop.host} -> ${host}:${port}`);
      return {} as never;
    },
    close: () => {
      alive = false;
      log.push(`close ${hop.host}`);
    },
    get alive() {
      return alive;
    },
  };
  return { connection, drop: () => (alive = false) };
}

describe("JumpPool", () => {
  const hop = (host: string): Hop => ({ label: host, host, port: 22, user: "u", identityFiles: [] });

  it("shares one connection per hop between every server behind it, and closes it with its last user", async () => {
    const log: string[] = [];
    const opened: string[] = [];
    const pool = new JumpPool(async (h, via) => {
      opened.push(`${h.host}${via ? " via" : ""}`);
      if (via) await via(h.host, h.port);
      return fakeHop(h, log).connection;
    });
    const chain = [hop("outer"), hop("inner")];
    const [a, b] = await Promise.all([
      pool.stream(chain, "10.0.0.1", 22),
      pool.stream(chain, "10.0.0.2", 22),
    ]);
    expect(opened.sort()).toEqual(["inner via", "outer"]);
    expect(log).toEqual(["outer -> inner:22", "inner -> 10.0.0.1:22", "inner -> 10.0.0.2:22"]);
    a.release();
    expect(log).not.toContain("close inner");
    b.release();
    await new Promise((r) => setImmediate(r));
    expect(log).toContain("close inner");
    expect(log).toContain("close outer");
  });

  it("opens a hop again when its connection dropped; a failed one is not kept", async () => {
    const hops: ReturnType<typeof fakeHop>[] = [];
    let fail = true;
    const pool = new JumpPool(async (h) => {
      if (fail) {
        fail = false;
        throw new Error("refused");
      }
      const made = fakeHop(h, []);
      hops.push(made);
      return made.connection;
    });
    await expect(pool.stream([hop("b")], "x", 22)).rejects.toThrow("refused");
    const first = await pool.stream([hop("b")], "x", 22);
    hops[0]?.drop();
    await pool.stream([hop("b")], "y", 22);
    expect(hops).toHaveLength(2);
    first.release();
  });
});

describe("HandshakeLimiter", () => {
  it("keeps at most N handshakes in flight to one address, and M overall", async () => {
    const limiter = new HandshakeLimiter(2, 3);
    const inFlight = new Map<string, number>();
    let total = 0;
    let maxTotal = 0;
    const maxPer = new Map<string, number>();
    const work = (address: string) =>
      limiter.run(address, async () => {
        total++;
        inFlight.set(address, (inFlight.get(address) ?? 0) + 1);
        maxTotal = Math.max(maxTotal, total);
        maxPer.set(address, Math.max(maxPer.get(address) ?? 0, inFlight.get(address) ?? 0));
        await new Promise((r) => setTimeout(r, 5));
        total--;
        inFlight.set(address, (inFlight.get(address) ?? 1) - 1);
      });
    await Promise.all([..."aaaaaabbbc"].map((address) => work(address)));
    expect(maxPer.get("a")).toBe(2);
    expect(maxTotal).toBe(3);
  });

  it("lets a later address through while one address waits (no head-of-line blocking)", async () => {
    const limiter = new HandshakeLimiter(1, 10);
    const order: string[] = [];
    let release: () => void = () => {};
    const first = limiter.run("a", () => new Promise<void>((r) => (release = r)));
    const second = limiter.run("a", async () => void order.push("a2"));
    const other = limiter.run("b", async () => void order.push("b"));
    await other;
    expect(order).toEqual(["b"]);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(["b", "a2"]);
  });
});
