import { describe, expect, it } from "vitest";
import { AccessLogProblem, checkAccessLog } from "../../src/balancer/nginx/watch/log-check.js";
import { logFormatDirective } from "../../src/balancer/nginx/watch/log-format.js";
import type { CommandRunner, ExecResult } from "../../src/ssh/session.js";

/** A balancer host that answers the preflight's two questions: the log's sample, and `nginx -T`. */
function host(sample: string, dump: string): CommandRunner {
  const exec = async (command: string): Promise<ExecResult> =>
    command.includes(" -T") ? { code: 0, stdout: dump, stderr: "" } : { code: 0, stdout: sample, stderr: "" };
  return { name: "lb", exec, run: async (command) => (await exec(command)).stdout };
}

const LOG = "/var/log/nginx/access.log";
const writesIt = `http {\n${logFormatDirective("    ")}\n    access_log ${LOG} nexus;\n}\n`;

describe("the watch's preflight on a log that is not there", () => {
  it("one the running Nginx writes in the nexus format is being rotated: a warning, not a failure", async () => {
    const check = await checkAccessLog(host("missing\n", writesIt), { path: LOG, testCommand: "nginx" });
    expect(check.warning).toMatch(/does not exist right now \(being rotated\?\)/);
  });

  it("one the running Nginx does not write (a wrong path) fails, naming the fix", async () => {
    const other = writesIt.replace(LOG, "/var/log/nginx/other.log");
    await expect(
      checkAccessLog(host("missing\n", other), { path: LOG, testCommand: "nginx" }),
    ).rejects.toThrow(AccessLogProblem);
    await expect(
      checkAccessLog(host("missing\n", other), { path: LOG, testCommand: "nginx" }),
    ).rejects.toThrow(/does not exist: set balancer.accessLog/);
  });
});

describe("the watch's preflight on a log a client could forge", () => {
  it("refuses a log written with escape=none, even when its lines parse", async () => {
    const sample = `ok 200\n127.0.0.1 [29/Nov/2026:09:00:00 +0000] "GET / HTTP/1.1" 200 12 request_time=0.011 upstream=10.0.0.1:3000 upstream_status=200 upstream_time=0.010\n`;
    const unescaped = writesIt.replace("log_format nexus ", "log_format nexus escape=none ");
    await expect(
      checkAccessLog(host(sample, unescaped), { path: LOG, testCommand: "nginx" }),
    ).rejects.toThrow(/written with escape=none/);
    expect(await checkAccessLog(host(sample, writesIt), { path: LOG, testCommand: "nginx" })).toEqual({
      baseline: { requests: 1, failures: 0, latencies: [10] },
    });
  });
});
