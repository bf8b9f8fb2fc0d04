import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  holdsUpstreamBlock,
  listUpstreamServers,
  renderProxySettings,
  renderServerSettings,
  renderServersFile,
  renderUpgradeMap,
  renderUpstreamBlock,
  setServerDown,
  UpstreamEditError,
} from "../../src/balancer/nginx/upstream.js";

const CONF = `# Managed by nexus; edit with care
upstream nexus_app {
    least_conn;
    server 127.0.0.1:3000 max_fails=3 fail_timeout=30s;   # primary server; keep first
    server 127.0.0.11:3000 max_fails=3 fail_timeout=30s;
    server 127.0.0.12:3000 weight=2 down;
    server 10.0.0.9:3000 backup;
    # server 127.0.0.13:3000;  a commented-out server
    keepalive 32;
}

upstream other_app {
\tserver 127.0.0.1:3000;
\tserver unix:/run/app.sock max_fails=1;
}

server {
    listen 80;
    server_name example.com; # server www.example.com;
    location / {
        proxy_pass http://nexus_app;
    }
}
`;

function expectOnlyLineChanged(before: string, after: string, lineNumber: number, expected: string): void {
  const beforeLines = before.split("\n");
  const afterLines = after.split("\n");
  expect(afterLines).toHaveLength(beforeLines.length);
  for (const [i, original] of beforeLines.entries()) {
    if (i === lineNumber - 1) expect(afterLines[i]).toBe(expected);
    else expect(afterLines[i]).toBe(original);
  }
}

function errorOf(fn: () => unknown): UpstreamEditError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UpstreamEditError) return error;
    throw error;
  }
  throw new Error("expected an UpstreamEditError");
}

describe("listUpstreamServers", () => {
  it("lists server directives of every upstream block", () => {
    expect(listUpstreamServers(CONF)).toEqual([
      {
        upstream: "nexus_app",
        address: "127.0.0.1:3000",
        down: false,
        line: 4,
        params: ["max_fails=3", "fail_timeout=30s"],
      },
      {
        upstream: "nexus_app",
        address: "127.0.0.11:3000",
        down: false,
        line: 5,
        params: ["max_fails=3", "fail_timeout=30s"],
      },
      {
        upstream: "nexus_app",
        address: "127.0.0.12:3000",
        down: true,
        line: 6,
        params: ["weight=2", "down"],
      },
      { upstream: "nexus_app", address: "10.0.0.9:3000", down: false, line: 7, params: ["backup"] },
      { upstream: "other_app", address: "127.0.0.1:3000", down: false, line: 13, params: [] },
      {
        upstream: "other_app",
        address: "unix:/run/app.sock",
        down: false,
        line: 14,
        params: ["max_fails=1"],
      },
    ]);
  });

  it("lists only the named block", () => {
    expect(listUpstreamServers(CONF, "other_app").map((server) => server.address)).toEqual([
      "127.0.0.1:3000",
      "unix:/run/app.sock",
    ]);
    expect(listUpstreamServers(CONF, "missing")).toEqual([]);
  });

  it("ignores comments, server blocks and directives outside upstream blocks", () => {
    const addresses = listUpstreamServers(CONF).map((server) => server.address);
    expect(addresses).not.toContain("127.0.0.13:3000");
    expect(addresses).not.toContain("www.example.com");
    expect(listUpstreamServers("server 127.0.0.1:3000;\nserver { listen 80; }\n")).toEqual([]);
  });

  it("finds upstream blocks nested in http and stream contexts", () => {
    const text =
      "http {\n  upstream a { server 1.1.1.1:80; }\n}\nstream {\n  upstream b { server 2.2.2.2:53; }\n}\n";
    expect(listUpstreamServers(text).map((server) => [server.upstream, server.address, server.line])).toEqual(
      [
        ["a", "1.1.1.1:80", 2],
        ["b", "2.2.2.2:53", 5],
      ],
    );
  });

  it("handles quoted values, several directives per line and directives spanning lines", () => {
    const text = [
      'upstream q { server "127.0.0.1:3000" weight=1; server 127.0.0.2:3000 down; keepalive 4; }',
      "upstream m {",
      "    server 127.0.0.3:3000  # comment inside the directive",
      "        weight=5",
      "        down;",
      "}",
    ].join("\n");
    expect(listUpstreamServers(text)).toEqual([
      { upstream: "q", address: "127.0.0.1:3000", down: false, line: 1, params: ["weight=1"] },
      { upstream: "q", address: "127.0.0.2:3000", down: true, line: 1, params: ["down"] },
      { upstream: "m", address: "127.0.0.3:3000", down: true, line: 3, params: ["weight=5", "down"] },
    ]);
  });

  it("tolerates unbalanced braces and empty input", () => {
    expect(listUpstreamServers("")).toEqual([]);
    expect(listUpstreamServers("}\nupstream a {\n server x:1;\n")).toMatchObject([{ address: "x:1" }]);
  });
});

describe("setServerDown", () => {
  it("drains by adding ` down` before the semicolon and nothing else", () => {
    const drained = setServerDown(CONF, "127.0.0.11:3000", true);
    expect(drained.changed).toBe(true);
    expectOnlyLineChanged(
      CONF,
      drained.text,
      5,
      "    server 127.0.0.11:3000 max_fails=3 fail_timeout=30s down;",
    );
    expect(listUpstreamServers(drained.text, "nexus_app")[1]).toMatchObject({
      address: "127.0.0.11:3000",
      down: true,
    });
  });

  it("round-trips drain then enable byte for byte", () => {
    for (const { address, upstream } of listUpstreamServers(CONF)) {
      const original = listUpstreamServers(CONF, upstream).find((server) => server.address === address);
      const first = setServerDown(CONF, address, !original?.down, upstream);
      const second = setServerDown(first.text, address, original?.down ?? false, upstream);
      expect(first.changed).toBe(true);
      expect(second.changed).toBe(true);
      expect(second.text).toBe(CONF);
    }
  });

  it("is idempotent", () => {
    const once = setServerDown(CONF, "127.0.0.11:3000", true).text;
    expect(setServerDown(once, "127.0.0.11:3000", true)).toEqual({ text: once, changed: false });
    expect(setServerDown(CONF, "127.0.0.11:3000", false)).toEqual({ text: CONF, changed: false });
    expect(setServerDown(CONF, "127.0.0.12:3000", true)).toEqual({ text: CONF, changed: false });
  });

  it("enables a server that is already down", () => {
    const enabled = setServerDown(CONF, "127.0.0.12:3000", false);
    expect(enabled.changed).toBe(true);
    expectOnlyLineChanged(CONF, enabled.text, 6, "    server 127.0.0.12:3000 weight=2;");
    expect(setServerDown(enabled.text, "127.0.0.12:3000", true).text).toBe(CONF);
  });

  it("keeps other parameters such as backup", () => {
    const drained = setServerDown(CONF, "10.0.0.9:3000", true);
    expectOnlyLineChanged(CONF, drained.text, 7, "    server 10.0.0.9:3000 backup down;");
  });

  it("does not confuse an address with one it is a prefix of", () => {
    const drained = setServerDown(CONF, "127.0.0.1:3000", true, "nexus_app");
    expectOnlyLineChanged(
      CONF,
      drained.text,
      4,
      "    server 127.0.0.1:3000 max_fails=3 fail_timeout=30s down;   # primary server; keep first",
    );
    const eleven = setServerDown(CONF, "127.0.0.11:3000", true);
    expectOnlyLineChanged(
      CONF,
      eleven.text,
      5,
      "    server 127.0.0.11:3000 max_fails=3 fail_timeout=30s down;",
    );
    expect(() => setServerDown(CONF, "127.0.0.1:300", true)).toThrow(UpstreamEditError);
    expect(() => setServerDown(CONF, "127.0.0.1", true)).toThrow(UpstreamEditError);
    expect(() => setServerDown(CONF, "27.0.0.11:3000", true)).toThrow(UpstreamEditError);
  });

  it("edits the same address in the named block only", () => {
    const drained = setServerDown(CONF, "127.0.0.1:3000", true, "other_app");
    expectOnlyLineChanged(CONF, drained.text, 13, "\tserver 127.0.0.1:3000 down;");
    expect(setServerDown(drained.text, "127.0.0.1:3000", false, "other_app").text).toBe(CONF);
  });

  it("rejects an address found in several selected blocks", () => {
    const error = errorOf(() => setServerDown(CONF, "127.0.0.1:3000", true));
    expect(error.name).toBe("UpstreamEditError");
    expect(error.address).toBe("127.0.0.1:3000");
    expect(error.upstreams).toEqual(["nexus_app", "other_app"]);
    expect(error.message).toContain("127.0.0.1:3000");
    expect(error.message).toContain("2 times");
    expect(error.message).toContain("nexus_app line 4");
    expect(error.message).toContain("other_app line 13");
  });

  it("rejects an address listed twice in one block", () => {
    const text = "upstream a {\n    server x:1;\n    server x:1 backup;\n}\n";
    expect(() => setServerDown(text, "x:1", true, "a")).toThrow(/appears 2 times/);
  });

  it("rejects a missing address, naming the upstreams in the file", () => {
    const error = errorOf(() => setServerDown(CONF, "127.0.0.99:3000", true));
    expect(error).toBeInstanceOf(UpstreamEditError);
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain("127.0.0.99:3000");
    expect(error.message).toContain("nexus_app, other_app");

    const inBlock = errorOf(() => setServerDown(CONF, "unix:/run/app.sock", true, "nexus_app"));
    expect(inBlock.message).toContain('upstream "nexus_app"');

    const noBlock = errorOf(() => setServerDown(CONF, "127.0.0.1:3000", true, "nexus"));
    expect(noBlock.message).toContain('No upstream "nexus"');
    expect(noBlock.message).toContain("nexus_app, other_app");

    expect(errorOf(() => setServerDown("events {}\n", "x:1", true)).message).toContain("none");
  });

  it("does not match server lines in comments", () => {
    const text = "upstream a {\n    # server x:1;\n    server y:1; # server x:1;\n}\n";
    expect(() => setServerDown(text, "x:1", true)).toThrow(UpstreamEditError);
  });

  it("preserves CRLF line endings", () => {
    const crlf = CONF.replace(/\n/g, "\r\n");
    const drained = setServerDown(crlf, "127.0.0.11:3000", true, "nexus_app");
    expect(drained.text).toBe(
      setServerDown(CONF, "127.0.0.11:3000", true, "nexus_app").text.replace(/\n/g, "\r\n"),
    );
    expect(drained.text.replace(/\r\n/g, "")).not.toContain("\n");
    expect(setServerDown(drained.text, "127.0.0.11:3000", false, "nexus_app").text).toBe(crlf);

    const enabled = setServerDown(crlf, "127.0.0.12:3000", false);
    expect(enabled.text).toContain("    server 127.0.0.12:3000 weight=2;\r\n");
    expect(setServerDown(enabled.text, "127.0.0.12:3000", true).text).toBe(crlf);
  });

  it("edits one of several directives on a line", () => {
    const text = "upstream q { server a:1; server b:1 down; keepalive 4; }\n";
    expect(setServerDown(text, "a:1", true).text).toBe(
      "upstream q { server a:1 down; server b:1 down; keepalive 4; }\n",
    );
    expect(setServerDown(text, "b:1", false).text).toBe(
      "upstream q { server a:1; server b:1; keepalive 4; }\n",
    );
  });

  it("inserts after the last parameter when a comment precedes the semicolon", () => {
    const text = "upstream a {\n    server x:1 weight=2 # heavy; really\n    ;\n}\n";
    const drained = setServerDown(text, "x:1", true);
    expect(drained.text).toBe("upstream a {\n    server x:1 weight=2 down # heavy; really\n    ;\n}\n");
    expect(setServerDown(drained.text, "x:1", false).text).toBe(text);
  });

  it("keeps multi-line directives valid when removing a `down` that starts a line", () => {
    const ownLine = "upstream a {\n    server x:1 # note\n        down\n    ;\n}\n";
    const enabledOwnLine = setServerDown(ownLine, "x:1", false).text;
    expect(enabledOwnLine).toBe("upstream a {\n    server x:1 # note\n    ;\n}\n");
    expect(listUpstreamServers(enabledOwnLine)).toMatchObject([{ address: "x:1", down: false, params: [] }]);

    const withSemicolon = "upstream a {\r\n    server x:1 # note\r\n        down;\r\n}\r\n";
    const enabled = setServerDown(withSemicolon, "x:1", false).text;
    expect(enabled).toBe("upstream a {\r\n    server x:1 # note\r\n        ;\r\n}\r\n");
    expect(listUpstreamServers(enabled)).toMatchObject([{ address: "x:1", down: false }]);
  });

  it("removes every `down` of a directive", () => {
    const text = "upstream a { server x:1 down weight=1 down; }";
    expect(setServerDown(text, "x:1", false).text).toBe("upstream a { server x:1 weight=1; }");
  });

  it("handles quoted addresses", () => {
    const text = 'upstream a {\n    server "x:1" weight=1;\n}\n';
    const drained = setServerDown(text, "x:1", true).text;
    expect(drained).toBe('upstream a {\n    server "x:1" weight=1 down;\n}\n');
    expect(setServerDown(drained, "x:1", false).text).toBe(text);
  });

  it("round-trips on generated files (property)", () => {
    const blank = fc.constantFrom(" ", "  ", "\t", " \t ");
    const eol = fc.constantFrom("\n", "\r\n");
    const param = fc.constantFrom("weight=2", "max_fails=3", "fail_timeout=30s", "backup", "max_conns=10");
    const comment = fc.option(fc.constantFrom("# server z:9;", "# note { }", "#"), { nil: undefined });
    const server = fc.record({
      indent: blank,
      params: fc.array(param, { maxLength: 3 }),
      sep: blank,
      comment,
      eol,
    });
    fc.assert(
      fc.property(fc.array(server, { minLength: 1, maxLength: 6 }), fc.nat(), (servers, pick) => {
        const lines = servers.map(
          (s, i) =>
            `${s.indent}server 10.0.0.${i}:3000${s.params.map((p) => `${s.sep}${p}`).join("")};` +
            `${s.comment === undefined ? "" : ` ${s.comment}`}${s.eol}`,
        );
        const text = `upstream gen {\n${lines.join("")}}\n`;
        const address = `10.0.0.${pick % servers.length}:3000`;
        const drained = setServerDown(text, address, true, "gen");
        const drainedServer = listUpstreamServers(drained.text).find((s) => s.address === address);
        expect(drainedServer?.down).toBe(true);
        expect(listUpstreamServers(drained.text).filter((s) => s.down)).toHaveLength(1);
        expect(setServerDown(drained.text, address, false, "gen").text).toBe(text);
      }),
    );
  });
});

describe("renderUpstreamBlock", () => {
  it("renders the recommended block", () => {
    expect(renderUpstreamBlock({ name: "nexus_app", servers: ["127.0.0.11:3000", "127.0.0.12:3000"] })).toBe(
      [
        "upstream nexus_app {",
        "    least_conn;",
        "    server 127.0.0.11:3000 max_fails=3 fail_timeout=30s;",
        "    server 127.0.0.12:3000 max_fails=3 fail_timeout=30s;",
        "    keepalive 32;",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("honours the options", () => {
    expect(
      renderUpstreamBlock({
        name: "api",
        servers: ["unix:/run/api.sock"],
        lbMethod: "ip_hash",
        maxFails: 0,
        failTimeout: "5s",
        keepalive: 8,
      }),
    ).toBe(
      "upstream api {\n    ip_hash;\n    server unix:/run/api.sock max_fails=0 fail_timeout=5s;\n    keepalive 8;\n}\n",
    );
    expect(renderUpstreamBlock({ name: "rr", servers: ["a:1"], lbMethod: "round_robin", keepalive: 0 })).toBe(
      "upstream rr {\n    server a:1 max_fails=3 fail_timeout=30s;\n}\n",
    );
  });

  it("produces a block that listUpstreamServers and setServerDown understand", () => {
    const block = renderUpstreamBlock({ name: "nexus_app", servers: ["127.0.0.1:3000", "127.0.0.11:3000"] });
    expect(listUpstreamServers(block).map((server) => [server.address, server.down, server.line])).toEqual([
      ["127.0.0.1:3000", false, 3],
      ["127.0.0.11:3000", false, 4],
    ]);
    const drained = setServerDown(block, "127.0.0.1:3000", true);
    expect(drained.text).toContain("    server 127.0.0.1:3000 max_fails=3 fail_timeout=30s down;\n");
    expect(setServerDown(drained.text, "127.0.0.1:3000", false).text).toBe(block);
  });

  it("rejects values that would break the file", () => {
    expect(() => renderUpstreamBlock({ name: "a b", servers: ["x:1"] })).toThrow(/upstream name/);
    expect(() => renderUpstreamBlock({ name: "a", servers: [] })).toThrow(/at least one server/);
    expect(() => renderUpstreamBlock({ name: "a", servers: ["x:1;"] })).toThrow(/server address/);
    expect(() => renderUpstreamBlock({ name: "a", servers: ["x:1"], failTimeout: "" })).toThrow(
      /fail_timeout/,
    );
    expect(() => renderUpstreamBlock({ name: "a", servers: ["x:1"], maxFails: -1 })).toThrow(/max_fails/);
    expect(() => renderUpstreamBlock({ name: "a", servers: ["x:1"], keepalive: 1.5 })).toThrow(/keepalive/);
  });
});

describe("a servers file (only server lines, included inside the upstream block)", () => {
  const file = renderServersFile({ servers: ["10.0.0.1:3000", "10.0.0.2:3000"] });

  it("is rendered with the seed's parameters, and the block includes it", () => {
    expect(file).toBe(
      "server 10.0.0.1:3000 max_fails=3 fail_timeout=30s;\nserver 10.0.0.2:3000 max_fails=3 fail_timeout=30s;\n",
    );
    expect(renderUpstreamBlock({ name: "api", include: "/etc/nginx/nexus/api.servers" })).toBe(
      "upstream api {\n    least_conn;\n    include /etc/nginx/nexus/api.servers;\n    keepalive 32;\n}\n",
    );
    expect(holdsUpstreamBlock(file)).toBe(false);
    expect(holdsUpstreamBlock(renderUpstreamBlock({ name: "api", servers: ["a:1"] }))).toBe(true);
  });

  it("is read and edited like a block, under the upstream name the config gives or none", () => {
    for (const name of [undefined, "api"]) {
      expect(listUpstreamServers(file, name).map((s) => [s.upstream, s.address, s.down])).toEqual([
        [name ?? "", "10.0.0.1:3000", false],
        [name ?? "", "10.0.0.2:3000", false],
      ]);
      const drained = setServerDown(file, "10.0.0.2:3000", true, name);
      expect(drained.text).toBe(
        file.replace("30s;\n", "30s;\n").replace(/(10\.0\.0\.2:3000 [^;]*);/, "$1 down;"),
      );
      expect(setServerDown(drained.text, "10.0.0.2:3000", false, name).text).toBe(file);
    }
    expect(() => setServerDown(file, "10.0.0.9:3000", true)).toThrow(/not found/);
  });
});

describe("renderServerSettings", () => {
  it("bounds how long a connection that has not sent its request can hold a drain: 10 s, at most the drain timeout", () => {
    expect(renderServerSettings(30_000)).toMatch(/^# .*\nclient_header_timeout 10s;\n$/);
    expect(renderServerSettings(4_500)).toContain("client_header_timeout 4s;");
    expect(renderServerSettings(200)).toContain("client_header_timeout 1s;");
  });
});

describe("renderUpgradeMap", () => {
  it("maps a WebSocket upgrade to Connection: upgrade, anything else to an empty header (keepalive)", () => {
    expect(renderUpgradeMap("  ")).toBe(
      "  map $http_upgrade $nexus_connection_upgrade {\n      default upgrade;\n      '' '';\n  }\n",
    );
  });
});

describe("renderProxySettings", () => {
  it("renders the recommended location directives", () => {
    expect(renderProxySettings("nexus_app")).toBe(
      [
        "    proxy_pass http://nexus_app;",
        "    proxy_http_version 1.1;",
        "    proxy_set_header Upgrade $http_upgrade;",
        "    proxy_set_header Connection $nexus_connection_upgrade;",
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_next_upstream error timeout http_502 http_503;",
        "    proxy_next_upstream_tries 3;",
        "    proxy_next_upstream_timeout 10s;",
        "    proxy_connect_timeout 2s;",
        "",
      ].join("\n"),
    );
  });

  it("takes the upstream name and indentation", () => {
    const settings = renderProxySettings("api", "\t\t");
    expect(settings.startsWith("\t\tproxy_pass http://api;\n")).toBe(true);
    expect(
      settings
        .split("\n")
        .filter(Boolean)
        .every((line) => line.startsWith("\t\t")),
    ).toBe(true);
    expect(() => renderProxySettings("bad;name")).toThrow(/upstream name/);
  });
});
