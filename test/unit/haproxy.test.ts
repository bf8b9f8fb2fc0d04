import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderHaproxyConfig } from "../../src/balancer/haproxy/config.js";
import {
  drainPollScript,
  runtimeScript,
  saveStateLines,
  setServerState,
  splitReplies,
} from "../../src/balancer/haproxy/runtime-api.js";
import { parseServersState, parseShowStat } from "../../src/balancer/haproxy/stats.js";

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
      // CMAINT: `disabled` in the config file.
      { server: "nexus-delta", maint: true, drain: false, operational: 2 },
    ]);
    expect(states[0]?.address).toBe("127.0.7.2");
  });

  it("refuses a reply that is not show servers state", () => {
    expect(() => parseServersState("Can't find backend.\n")).toThrow(/not a "show servers state" reply/);
  });
});

describe("HAProxy runtime API script", () => {
  it("quotes the socket path and every command", () => {
    const script = runtimeScript(
      "/run/my haproxy/admin.sock",
      ["show stat app 4 -1"],
      saveStateLines("/var/lib/it's/state"),
    );
    expect(script).toContain("sock='/run/my haproxy/admin.sock'");
    expect(script).toContain("hap 'show stat app 4 -1';");
    expect(script).toContain("state_file='/var/lib/it'\\''s/state'");
    expect(setServerState("app", "web-1", "drain")).toBe("set server app/web-1 state drain");
  });

  it("splits replies, keeping empty ones (a set server that succeeded)", () => {
    const mark = "@@nexus-haproxy-reply";
    expect(splitReplies(`1\n# be_id\n\n\n${mark} 0\n\n${mark} 0\nNo such server.\n\n${mark} 0\n`)).toEqual([
      { text: "1\n# be_id", status: 0 },
      { text: "", status: 0 },
      { text: "No such server.", status: 0 },
    ]);
    expect(splitReplies(`\n${mark} 1\n`)).toEqual([{ text: "", status: 1 }]);
  });

  it("runs under sh: one socket connection per command through socat, replies in order", () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-"));
    // A fake socat that answers "echo:<command>" and records its address argument.
    writeFileSync(
      join(dir, "socat"),
      `#!/bin/sh\nread -r line\nprintf '%s\\n' "$4" >> "${dir}/addresses"\nprintf 'echo:%s\\n\\n' "$line"\n`,
    );
    chmodSync(join(dir, "socat"), 0o755);
    // -S needs a socket: a fifo would not do, so point at a real one only if the test can make it.
    const script = runtimeScript(`${dir}/admin sock`, ["show info", "set server a/b state ready"]).replace(
      /^if \[ ! -S .*$/m,
      ":",
    );
    const out = execFileSync("sh", ["-c", script], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      encoding: "utf8",
    });
    expect(splitReplies(out)).toEqual([
      { text: "echo:show info", status: 0 },
      { text: "echo:set server a/b state ready", status: 0 },
    ]);
    expect(execFileSync("cat", [join(dir, "addresses")], { encoding: "utf8" })).toBe(
      `UNIX-CONNECT:${dir}/admin sock\nUNIX-CONNECT:${dir}/admin sock\n`,
    );
  });

  it("falls back to node when socat is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-node-"));
    symlinkSync(process.execPath, join(dir, "node"));
    const socket = join(dir, "admin sock");
    // A stand-in for HAProxy's non-interactive CLI: answers one line, then closes.
    const server = createServer((connection) => {
      let line = "";
      connection.on("data", (chunk) => {
        line += chunk;
        if (line.endsWith("\n")) connection.end(`echo:${line.trim()}\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          "/bin/sh",
          ["-c", runtimeScript(socket, ["show info", "set server a/b state ready"])],
          { env: { PATH: dir } },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        ),
      );
      expect(splitReplies(out)).toEqual([
        { text: "echo:show info", status: 0 },
        { text: "echo:set server a/b state ready", status: 0 },
      ]);
    } finally {
      server.close();
    }
  });

  it("a drain poll sets maint in the same round trip only once the server has no session", () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-haproxy-poll-"));
    // A fake socat: `show stat` with beta's scur from a file, and a log of every command.
    writeFileSync(
      join(dir, "socat"),
      `#!/bin/sh
read -r line
printf '%s\\n' "$line" >> "${dir}/commands"
case "$line" in
  "show stat app 4 -1") printf '# pxname,svname,qcur,qmax,scur,smax,status\\napp,alpha,0,0,7,9,UP\\napp,beta,0,0,%s,9,UP\\n\\n' "$(cat "${dir}/scur")" ;;
  "show servers state app") printf '1\\n# be_id be_name srv_id srv_name\\n\\n' ;;
  *) printf '\\n' ;;
esac
`,
    );
    chmodSync(join(dir, "socat"), 0o755);
    const poll = () => {
      const script = drainPollScript(`${dir}/admin sock`, "app", "beta").replace(/^if \[ ! -S .*$/m, ":");
      return splitReplies(
        execFileSync("sh", ["-c", script], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: "utf8" }),
      );
    };
    writeFileSync(join(dir, "scur"), "2");
    expect(poll()).toHaveLength(2);
    writeFileSync(join(dir, "scur"), "0");
    const replies = poll();
    expect(replies).toHaveLength(3);
    expect(replies[2]).toEqual({ text: "", status: 0 });
    expect(
      execFileSync("cat", [join(dir, "commands")], { encoding: "utf8" })
        .trim()
        .split("\n"),
    ).toEqual([
      "show stat app 4 -1",
      "show servers state app",
      "show stat app 4 -1",
      "show servers state app",
      "set server app/beta state maint",
    ]);
  });

  it("says so when the admin socket is missing", () => {
    const script = runtimeScript("/nonexistent/admin.sock", ["show info"]);
    let status = 0;
    try {
      execFileSync("sh", ["-c", script], { stdio: "pipe" });
    } catch (error) {
      status = (error as { status: number }).status;
    }
    expect(status).toBe(90);
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
});
