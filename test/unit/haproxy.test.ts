import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderHaproxyConfig } from "../../src/balancer/haproxy/config.js";
import {
  channelScript,
  NO_SOCKET,
  setServerState,
  writeStateFileScript,
} from "../../src/balancer/haproxy/runtime-api.js";
import { RuntimeChannel } from "../../src/balancer/haproxy/runtime-channel.js";
import { parseServersState, parseShowStat } from "../../src/balancer/haproxy/stats.js";
import { LocalRunner } from "../../src/ssh/local-runner.js";

// Replies as HAProxy 2.6 gives them.
const SHOW_STAT = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
fe,FRONTEND,,,3,9,262120,120,0,0,0,0,0,,,,,OPEN,
app,nexus-alpha,0,0,2,5,,60,0,0,,0,,0,0,0,0,UP,1
app,nexus-beta,1,1,0,4,,60,0,0,,0,,0,0,0,0,DRAIN,1
app,nexus-gamma,0,0,0,4,,60,0,0,,0,,0,0,0,0,MAINT,1
app,BACKEND,0,0,2,9,26212,120,0,0,0,0,,0,0,0,0,UP,2
`;

const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 nexus-alpha 127.0.7.2 2 0 1 1 1 1 0 2 0 0 0 0 - 3000 - 0 0 - - 0
3 app 2 nexus-beta 127.0.7.3 2 8 1 1 1 1 0 2 0 0 0 0 - 3000 - 0 0 - - 0
3 app 3 nexus-gamma 127.0.7.4 0 1 1 1 1 1 0 2 0 0 0 0 - 3000 - 0 0 - - 0
3 app 4 nexus-delta 127.0.7.5 2 4 1 1 1 1 0 2 0 0 0 0 - 3000 - 0 0 - - 0
3 app 5 nexus-epsilon 127.0.7.6 0 5 0 0 1 1 0 0 8 0 0 0 - 3001 - 0 0 - - 0
`;

describe("HAProxy runtime API parsers", () => {
  it("reads sessions, queue and status of each server from show stat, skipping frontends and backends", () => {
    expect(parseShowStat(SHOW_STAT)).toEqual([
      { backend: "app", server: "nexus-alpha", sessions: 2, queued: 0, status: "UP" },
      { backend: "app", server: "nexus-beta", sessions: 0, queued: 1, status: "DRAIN" },
      { backend: "app", server: "nexus-gamma", sessions: 0, queued: 0, status: "MAINT" },
    ]);
  });

  it("refuses a reply that is not show stat", () => {
    expect(() => parseShowStat("Unknown command.\n")).toThrow(/not a "show stat" reply/);
    expect(() => parseShowStat("# pxname,svname\napp,x\n")).toThrow(/lacks/);
  });

  it("reads the administrative state bits from show servers state", () => {
    const states = parseServersState(SERVERS_STATE);
    expect(
      states.map(({ server, maint, drain, operational }) => ({ server, maint, drain, operational })),
    ).toEqual([
      { server: "nexus-alpha", maint: false, drain: false, operational: 2 },
      { server: "nexus-beta", maint: false, drain: true, operational: 2 },
      { server: "nexus-gamma", maint: true, drain: false, operational: 0 },
      // CMAINT alone: `disabled` in the config file, then `state ready`: it takes traffic
      // (HAProxy's SRV_ADMF_MAINT mask leaves CMAINT out).
      { server: "nexus-delta", maint: false, drain: false, operational: 2 },
      // CMAINT | FMAINT: `disabled` in the config file, as HAProxy started it.
      { server: "nexus-epsilon", maint: true, drain: false, operational: 0 },
    ]);
    expect(states[0]?.address).toBe("127.0.7.2");
  });

  it("refuses a reply that is not show servers state", () => {
    expect(() => parseServersState("Can't find backend.\n")).toThrow(/not a "show servers state" reply/);
  });
});

describe("HAProxy runtime API scripts", () => {
  it("runs under sh whatever the login shell, the socket path and the state file quoted as arguments", () => {
    expect(channelScript("/run/my haproxy/admin.sock")).toMatch(
      /^sh -c '.*' nexus '\/run\/my haproxy\/admin\.sock'$/s,
    );
    expect(writeStateFileScript("/var/lib/it's/state")).toMatch(
      /^sh -c '.*' nexus '\/var\/lib\/it'\\''s\/state'$/s,
    );
    expect(setServerState("app", "web-1", "drain")).toBe("set server app/web-1 state drain");
  });

  it("runs under sh: stdin and stdout connected to the socket through socat, for as long as it lasts", () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-"));
    // A fake socat: records its address argument, answers each line as HAProxy's prompt mode would.
    writeFileSync(
      join(dir, "socat"),
      `#!/bin/sh\nprintf '%s\\n' "$2" > "${dir}/address"\nwhile read -r line; do printf 'echo:%s\\n\\n> ' "$line"; done\n`,
    );
    chmodSync(join(dir, "socat"), 0o755);
    // -S needs a socket: the check is left out here, and tested on its own below.
    const script = channelScript(`${dir}/admin sock`).replace(/^if \[ ! -S .*$/m, ":");
    const out = execFileSync("sh", ["-c", script], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      input: "prompt\nshow info\n",
      encoding: "utf8",
    });
    expect(out).toBe("echo:prompt\n\n> echo:show info\n\n> ");
    expect(readFileSync(join(dir, "address"), "utf8")).toBe(`UNIX-CONNECT:${dir}/admin sock\n`);
  });

  it("falls back to node when socat is missing, and RuntimeChannel speaks the prompt mode over it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-node-"));
    symlinkSync(process.execPath, join(dir, "node"));
    symlinkSync("/bin/sh", join(dir, "sh"));
    const socket = join(dir, "admin sock");
    // A stand-in for HAProxy's CLI: `prompt` turns the prompt on, each line is answered.
    const server = createServer((connection) => {
      let input = "";
      connection.on("data", (chunk) => {
        input += chunk;
        for (let i = input.indexOf("\n"); i >= 0; i = input.indexOf("\n")) {
          const line = input.slice(0, i);
          input = input.slice(i + 1);
          connection.write(line === "prompt" ? "\n> " : `echo:${line}\n\n> `);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const path = process.env.PATH;
    process.env.PATH = dir;
    const channel = new RuntimeChannel(new LocalRunner(), socket);
    try {
      expect(await channel.call("show info")).toBe("echo:show info");
      expect(await channel.call("set server a/b state ready")).toBe("echo:set server a/b state ready");
    } finally {
      process.env.PATH = path;
      channel.close();
      server.close();
    }
  });

  it("says so when the admin socket is missing", () => {
    let status = 0;
    try {
      execFileSync("sh", ["-c", channelScript("/nonexistent/admin.sock")], { stdio: "pipe" });
    } catch (error) {
      status = (error as { status: number }).status;
    }
    expect(status).toBe(NO_SOCKET);
  });

  it("writes the state file whole, through a temporary file", () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-state-"));
    const file = join(dir, "server state");
    execFileSync("sh", ["-c", writeStateFileScript(file)], { input: "1\n# be_id\n" });
    expect(readFileSync(file, "utf8")).toBe("1\n# be_id\n");
    expect(existsSync(`${file}.nexus-tmp`)).toBe(false);
  });
});

describe("nexus haproxy-config", () => {
  it("prints the admin socket, the state file and one server line per server", () => {
    const text = renderHaproxyConfig({
      backend: "web",
      servers: [
        { name: "alpha", address: "10.0.0.1:3000" },
        { name: "b2", address: "10.0.0.2:3000" },
      ],
      socket: "/run/haproxy/admin.sock",
      stateFile: "/var/lib/haproxy/server-state",
      healthPath: "/health",
    });
    expect(text).toContain("stats socket /run/haproxy/admin.sock mode 660 level admin\n");
    expect(text).toContain("server-state-file /var/lib/haproxy/server-state\n");
    expect(text).toContain("load-server-state-from-file global\n");
    expect(text).toContain("backend web\n");
    expect(text).toContain("option httpchk GET /health\n");
    expect(text).toMatch(/server alpha 10\.0\.0\.1:3000 check\n\s+server b2 10\.0\.0\.2:3000 check\n$/);
    expect(text).not.toContain("~");
  });

  it("adds a standby line per server, in maintenance with weight 0, for the surge strategy", () => {
    const text = renderHaproxyConfig({
      backend: "web",
      servers: [{ name: "alpha", address: "10.0.0.1:3000", surgeAddress: "10.0.0.1:3001" }],
      socket: "/run/haproxy/admin.sock",
      stateFile: "/var/lib/haproxy/server-state",
      healthPath: "/health",
    });
    expect(text).toMatch(
      /server alpha 10\.0\.0\.1:3000 check\n\s+server alpha-surge 10\.0\.0\.1:3001 check disabled weight 0\n$/,
    );
  });
});
