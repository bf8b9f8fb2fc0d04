import { describe, expect, it } from "vitest";
import { parseShowStat, statDeltas } from "../../src/balancer/haproxy/stat-counters.js";
import { HaproxyStatSource } from "../../src/balancer/haproxy/traffic-source.js";
import { completeLines, parseAccessLine, tallyLines } from "../../src/balancer/nginx/watch/access-log.js";
import { judgeSample, parseSample } from "../../src/balancer/nginx/watch/log-check.js";
import {
  dumpLogsInNexusFormat,
  LOG_FORMAT_TAIL,
  logFormatDirective,
  scanNginxDump,
} from "../../src/balancer/nginx/watch/log-format.js";
import { parseRead, readFromOffset } from "../../src/balancer/nginx/watch/log-source.js";
import type { Counts } from "../../src/watch/traffic.js";

const line = (addr: string, status: string, time = "0.010", request = "GET / HTTP/1.1") =>
  `127.0.0.1 [29/Nov/2026:09:00:00 +0000] "${request}" 200 12 request_time=0.011 upstream=${addr} upstream_status=${status} upstream_time=${time}`;

describe("the nexus access-log line", () => {
  it("reads one upstream try", () => {
    expect(parseAccessLine(line("10.0.0.1:3000", "200"))?.tries).toEqual([
      { address: "10.0.0.1:3000", status: 200, ms: 10 },
    ]);
  });

  it("reads several tries: a failed first try on A, passed on to B", () => {
    const parsed = parseAccessLine(line("10.0.0.1:3000, 10.0.0.2:3000", "502, 200", "0.001, 0.120"));
    expect(parsed?.tries).toEqual([
      { address: "10.0.0.1:3000", status: 502, ms: 1 },
      { address: "10.0.0.2:3000", status: 200, ms: 120 },
    ]);
  });

  it("reads an internal redirect's second upstream group (' : ')", () => {
    const parsed = parseAccessLine(line("10.0.0.1:3000 : 10.0.0.3:3000", "200 : 503", "0.002 : 0.004"));
    expect(parsed?.tries.map((t) => t.status)).toEqual([200, 503]);
  });

  it("skips a request served without an upstream, and a try with no status", () => {
    expect(parseAccessLine(line("-", "-", "-"))?.tries).toEqual([]);
    expect(parseAccessLine(line("10.0.0.1:3000", "-", "-"))?.tries).toEqual([{ address: "10.0.0.1:3000" }]);
  });

  it("is not fooled by a request line that imitates the fields", () => {
    const hostile = line(
      "10.0.0.1:3000",
      "200",
      "0.010",
      "GET /x upstream=10.0.0.9:3000 upstream_status=500 HTTP/1.1",
    );
    expect(parseAccessLine(hostile)?.tries).toEqual([{ address: "10.0.0.1:3000", status: 200, ms: 10 }]);
  });

  it("is not fooled by an unquoted client field before the tail ($http_x_forwarded_for): the last upstream= is Nginx's", () => {
    // log_format … '$http_x_forwarded_for upstream=$upstream_addr …': the client writes the header.
    const forged = (xff: string, status: number) =>
      `127.0.0.1 [29/Nov/2026:09:00:00 +0000] "GET / HTTP/1.1" ${status} 0 request_time=0.001 ${xff} upstream=10.0.0.1:3000 upstream_status=${status} upstream_time=0.001`;
    // Hides the real try's 500 and blames (or credits) a server of the client's choosing.
    for (const xff of [
      "x upstream=10.0.0.2:3000 :",
      "x upstream=10.0.0.2:3000,",
      'upstream=10.0.0.2:3000 upstream_status=200 "',
    ])
      expect(parseAccessLine(forged(xff, 500))?.tries, xff).toEqual([
        { address: "10.0.0.1:3000", status: 500, ms: 1 },
      ]);
    const counts = new Map<string, Counts>();
    tallyLines(
      [1, 2, 3].map(() => forged("x upstream=10.0.0.2:3000 :", 500)),
      counts,
    );
    expect(Object.fromEntries(counts)).toEqual({
      "10.0.0.1:3000": { requests: 3, failures: 3, latencies: [] },
    });
  });

  it("rejects lines of another format", () => {
    expect(
      parseAccessLine('127.0.0.1 - - [29/Nov/2026:09:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl"'),
    ).toBe(undefined);
  });

  it("counts every try against its server: 5xx, 502 (connect/read error) and 504 (timeout) fail", () => {
    const counts = new Map<string, Counts>();
    const foreign = tallyLines(
      [
        line("10.0.0.1:3000", "200"),
        line("10.0.0.1:3000", "500"),
        line("10.0.0.1:3000, 10.0.0.2:3000", "502, 201", "0.002, 0.135"),
        line("10.0.0.2:3000", "504", "10.001"),
        line("10.0.0.2:3000", "404", "0.003"),
        "garbage",
        "",
      ],
      counts,
    );
    expect(foreign).toBe(1);
    // The response times of the answered tries: a failed try's time is not a latency.
    expect(counts.get("10.0.0.1:3000")).toEqual({ requests: 3, failures: 2, latencies: [10] });
    expect(counts.get("10.0.0.2:3000")).toEqual({ requests: 3, failures: 1, latencies: [135, 3] });
  });

  it("keeps a line still being written for the next read", () => {
    expect(completeLines("a\nb\nhalf")).toEqual({ lines: ["a", "b"], bytes: 4 });
    expect(completeLines("half")).toEqual({ lines: [], bytes: 0 });
  });
});

describe("the log format, defined once", () => {
  it("ends with the fields the parser reads", () => {
    const directive = logFormatDirective();
    expect(directive).toMatch(/^log_format nexus '/);
    expect(directive.endsWith(`'${LOG_FORMAT_TAIL}';`)).toBe(true);
    for (const variable of ["$upstream_addr", "$upstream_status", "$upstream_response_time"])
      expect(directive).toContain(variable);
  });

  it("finds it in `nginx -T` output, relative access_log paths included", () => {
    const dump = `# configuration file /etc/nginx/nginx.conf:\nhttp {\n${logFormatDirective("    ")}\n    access_log logs/access.log nexus;\n}\n`;
    const finding = scanNginxDump(dump);
    expect(finding.compatibleFormats).toEqual(["nexus"]);
    expect(dumpLogsInNexusFormat(finding, "/usr/local/nginx/logs/access.log")).toBe(true);
    expect(dumpLogsInNexusFormat(finding, "/var/log/nginx/other.log")).toBe(false);
  });

  it("says no for a format with escape=none: a client's newline could forge a whole line", () => {
    const dump = `http {\n${logFormatDirective("    ").replace("log_format nexus ", "log_format nexus escape=none ")}\n    access_log /var/log/nginx/access.log nexus;\n}\n`;
    expect(scanNginxDump(dump).compatibleFormats).toEqual([]);
    const json = dump.replace("escape=none", "escape=json");
    expect(scanNginxDump(json).compatibleFormats).toEqual(["nexus"]);
  });

  it("says no for the combined format", () => {
    const finding = scanNginxDump("http {\n    access_log /var/log/nginx/access.log;\n}\n");
    expect(dumpLogsInNexusFormat(finding, "/var/log/nginx/access.log")).toBe(false);
  });
});

describe("reading the log from an offset", () => {
  it("passes the path, the last identity and the offset as parameters", () => {
    const command = readFromOffset("/var/log/nginx/a b.log", "2049:131", 100);
    expect(command).toMatch(/ nexus '\/var\/log\/nginx\/a b\.log' 2049:131 100 \d+$/);
    expect(command).toContain("tail -c +$((start + 1))");
  });

  it("splits the identity, size and start from the data, and the rotated file's rest", () => {
    expect(parseRead("2049:131 300 100\nline 1\nline")).toEqual({
      identity: "2049:131",
      size: 300,
      start: 100,
      data: "line 1\nline",
      old: "",
    });
    expect(parseRead("2049:7 20 0\n@old 4\nold\nnew\n")).toMatchObject({ old: "old\n", data: "new\n" });
    expect(parseRead("missing\n")).toEqual({ identity: "", size: 0, start: 0, data: "", old: "" });
    expect(() => parseRead("cannot open")).toThrow(/unexpected output/);
  });
});

describe("the preflight sample", () => {
  it("drops the cut first line when the log is larger than the sample", () => {
    const sample = parseSample("ok 999999\ncut line\nwhole 1\nwhole 2\n", 100);
    expect(sample).toEqual({ state: "ok", size: 999999, lines: ["whole 1", "whole 2"] });
    expect(parseSample("missing\n")).toEqual({ state: "missing" });
  });

  it("passes a log whose newest line is in the format, with the fleet's rate as baseline", () => {
    const verdict = judgeSample([
      'old "GET / HTTP/1.1" 200',
      line("10.0.0.1:3000", "500"),
      line("10.0.0.2:3000", "200"),
    ]);
    // With the response times of the answered tries: the latency reference for the last batch.
    expect(verdict).toEqual({ ok: true, baseline: { requests: 2, failures: 1, latencies: [10] } });
  });

  it("counts only the fleet's upstreams in the baseline: a shared log holds other sites' too", () => {
    const lines = [line("10.0.0.1:3000", "200"), line("10.9.9.9:8080", "502"), line("10.9.9.9:8080", "502")];
    expect(judgeSample(lines, ["10.0.0.1:3000", "10.0.0.2:3000"])).toEqual({
      ok: true,
      baseline: { requests: 1, failures: 0, latencies: [10] },
    });
  });

  it("fails a log in another format, naming the missing fields", () => {
    const verdict = judgeSample(['127.0.0.1 - - [29/Nov/2026] "GET / HTTP/1.1" 200 12 "-" "curl"']);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok === false && verdict.problem).toMatch(
      /\$upstream_addr, \$upstream_status, \$upstream_response_time/,
    );
  });

  it("cannot judge an empty log", () => {
    expect(judgeSample([])).toEqual({ ok: "unknown" });
  });
});

describe("HAProxy show stat", () => {
  const header =
    "# pxname,svname,qcur,scur,stot,econ,eresp,wretr,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,status";
  const csv = (a: number[], b: number[]) =>
    [
      header,
      "app,FRONTEND,,0,10,,,,0,100,0,0,0,0,OPEN",
      `app,web1,0,0,10,${a[0]},${a[1]},${a[2]},0,${a[3]},0,1,${a[4]},0,UP`,
      `app,web2,0,0,10,${b[0]},${b[1]},${b[2]},0,${b[3]},0,0,${b[4]},0,UP`,
      "app,BACKEND,0,0,20,0,0,0,0,200,0,1,0,0,UP",
      "other,web1,0,0,1,9,9,9,0,9,0,0,9,0,UP",
      "",
    ].join("\n");

  it("reads the per-server counters of one backend by column name", () => {
    const stats = parseShowStat(csv([1, 2, 3, 90, 4], [0, 0, 0, 50, 0]), "app");
    expect([...stats.keys()]).toEqual(["web1", "web2"]);
    expect(stats.get("web1")).toEqual({ responses: 95, hrsp5xx: 4, eresp: 2, econ: 1, wretr: 3 });
  });

  it("turns two snapshots into requests and failures per server", () => {
    const before = parseShowStat(csv([1, 2, 3, 90, 4], [0, 0, 0, 50, 0]), "app");
    const after = parseShowStat(csv([2, 2, 4, 130, 10], [0, 0, 0, 90, 0]), "app");
    expect(statDeltas(before, after).get("web1")).toEqual({ requests: 48, failures: 8 });
    expect(statDeltas(before, after).get("web2")).toEqual({ requests: 40, failures: 0 });
  });

  it("takes counters that went down (a restart) from zero", () => {
    const before = parseShowStat(csv([5, 5, 5, 500, 50], [0, 0, 0, 0, 0]), "app");
    const after = parseShowStat(csv([0, 0, 0, 20, 1], [0, 0, 0, 0, 0]), "app");
    expect(statDeltas(before, after).get("web1")).toEqual({ requests: 22, failures: 1 });
  });

  it("after a restart, takes every counter of the server from zero, even one that grew past its old value", () => {
    // 5xx restarted from 0 (100 -> 50) while the responses are back above their old total (101 ->
    // 111): taken apart, 50 failures of 10 requests; all fresh, 50 of 111.
    const before = parseShowStat(csv([0, 0, 0, 0, 100], [0, 0, 0, 0, 0]), "app");
    const after = parseShowStat(csv([0, 0, 0, 60, 50], [0, 0, 0, 0, 0]), "app");
    expect(statDeltas(before, after).get("web1")).toEqual({ requests: 111, failures: 50 });
  });

  it("a source polls deltas since its mark, then since its last poll", async () => {
    const snapshots = [
      csv([0, 0, 0, 10, 0], [0, 0, 0, 10, 0]),
      csv([0, 0, 0, 30, 5], [0, 0, 0, 20, 0]),
      csv([0, 0, 0, 40, 5], [0, 0, 0, 20, 0]),
    ];
    const source = new HaproxyStatSource(async () => snapshots.shift() ?? "", "app");
    await source.mark();
    expect(await source.poll()).toEqual(
      new Map([
        ["web1", { requests: 25, failures: 5 }],
        ["web2", { requests: 10, failures: 0 }],
      ]),
    );
    expect((await source.poll()).get("web1")).toEqual({ requests: 10, failures: 0 });
  });
});
