import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.js";
import type { DeployEvent, SummaryRow } from "../../src/events/events.js";
import {
  type CommandContext,
  jsonBody,
  notificationFor,
  slackBody,
  wanted,
} from "../../src/notify/notification.js";
import { Notifier, notifyFrom, notifyingReporter } from "../../src/notify/notifier.js";
import { maskingReporter, maskSecretsOf } from "../../src/report/masking.js";
import { configProblems } from "../fixtures/config.js";

const begin: DeployEvent = { type: "begin", command: "deploy", release: "r2", servers: ["alpha", "beta"] };
const summary = (outcome: "success" | "failed" | "needs-human", rows: SummaryRow[]): DeployEvent => ({
  type: "summary",
  outcome,
  release: "r2",
  rows,
  exitCode: { success: 0, failed: 1, "needs-human": 3 }[outcome],
  seconds: 12.34,
});
const breach: DeployEvent = {
  type: "watch",
  server: "alpha",
  result: "breach",
  verdict: "fail",
  metric: "errors",
  p: 0.0003,
  reference: "untouched",
  requests: 1290,
  failures: 31,
  rate: 31 / 1290,
  limit: 0.011,
  threshold: "maxFailureRatio",
  seconds: 30,
  message: "errors 2.4% (31 of 1,290) vs 0.1% on the others over 30 s, p = 0.0003",
};

function kinds(events: DeployEvent[]) {
  const context: CommandContext = { app: "api" };
  return events.map((e) => notificationFor(e, context)).map((n) => n && [n.kind, n.severity]);
}

describe("notifications: what is sent", () => {
  it("maps the event stream to begin, watch breach, rollback, success, needs a human", () => {
    expect(
      kinds([
        begin,
        { type: "info", message: "x" },
        breach,
        summary("failed", [{ server: "alpha", result: "rolled back", note: "watch: errors 2.4%" }]),
      ]),
    ).toEqual([["begin", "info"], undefined, ["watch-breach", "error"], ["rollback", "error"]]);
    expect(kinds([begin, summary("success", [{ server: "alpha", result: "deployed" }])])).toEqual([
      ["begin", "info"],
      ["success", "info"],
    ]);
    expect(kinds([begin, summary("failed", [{ server: "alpha", result: "restored" }])])[1]).toEqual([
      "failure",
      "error",
    ]);
    expect(kinds([begin, summary("needs-human", [{ server: "alpha", result: "needs human" }])])[1]).toEqual([
      "needs-human",
      "critical",
    ]);
  });

  it("says what happened in words, with the app, the release and the servers' notes", () => {
    const context: CommandContext = { app: "api" };
    notificationFor(begin, context);
    const n = notificationFor(
      summary("failed", [
        { server: "alpha", result: "rolled back", note: "watch: errors 2.4% (31 of 1,290) vs 0.1%" },
        { server: "beta", result: "not reached" },
      ]),
      context,
    );
    expect(n?.text).toBe(
      "api: nexus deploy r2 failed and was rolled back (in 12.3s, exit 1)\nalpha (rolled back): watch: errors 2.4% (31 of 1,290) vs 0.1%",
    );
    expect(slackBody(n as NonNullable<typeof n>)).toEqual({
      text: ":x: api: nexus deploy r2 failed and was rolled back (in 12.3s, exit 1)\nalpha (rolled back): watch: errors 2.4% (31 of 1,290) vs 0.1%",
    });
    const body = jsonBody(n as NonNullable<typeof n>, context, new Date("2026-12-01T00:00:00Z"));
    expect(body).toMatchObject({
      v: 1,
      time: "2026-12-01T00:00:00.000Z",
      type: "notify",
      kind: "rollback",
      severity: "error",
      app: "api",
      command: "deploy",
      release: "r2",
    });
    expect(body.event.type).toBe("summary");
  });

  it("filters by the lowest severity a target wants", () => {
    const context: CommandContext = { app: "api" };
    const started = notificationFor(begin, context) as NonNullable<ReturnType<typeof notificationFor>>;
    const failed = notificationFor(breach, context) as NonNullable<ReturnType<typeof notificationFor>>;
    expect(wanted({ severity: "info" }, started)).toBe(true);
    expect(wanted({ severity: "error" }, started)).toBe(false);
    expect(wanted({ severity: "error" }, failed)).toBe(true);
    expect(wanted({ severity: "critical" }, failed)).toBe(false);
  });

  it("escapes Slack's markup characters", () => {
    const n = notificationFor({ ...breach, message: "p99 <1 ms & more" }, { app: "a<b>" });
    expect(slackBody(n as NonNullable<typeof n>).text).toContain(
      "a&lt;b&gt;: nexus command: alpha failed its watch: p99 &lt;1 ms &amp; more",
    );
  });
});

describe("notify config", () => {
  const base = {
    app: { name: "api" },
    servers: [{ name: "a", host: "10.0.0.1" }],
    balancer: { host: "a", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
  };

  it("reads the URL from the environment, with defaults", () => {
    const config = resolveConfig(
      { ...base, notify: [{ url: { fromEnv: "SLACK_HOOK" }, format: "slack", severity: "error" }] },
      "deploy.config.json",
      "/project",
      { SLACK_HOOK: "https://hooks.example.test/services/T0/B0/secret" },
    );
    expect(config.notify).toEqual([
      {
        url: "https://hooks.example.test/services/T0/B0/secret",
        format: "slack",
        severity: "error",
        timeout: 5000,
      },
    ]);
  });

  it("names the field, never the URL", () => {
    expect(configProblems({ ...base, notify: [{ url: "ftp://x/y" }] })).toEqual([
      "notify[0].url: expected an http(s) URL",
    ]);
    expect(configProblems({ ...base, notify: [{ url: "https://x", severity: "loud" }] })[0]).toMatch(
      /^notify\[0\]\.severity: /,
    );
  });

  it("a webhook whose fromEnv variable is not set is no config error (read-only commands need no secret): it is not told, and that is said", async () => {
    const config = resolveConfig(
      { ...base, notify: [{ url: { fromEnv: "NO_SUCH_HOOK_VARIABLE" }, severity: "info" }] },
      "deploy.config.json",
      "/project",
      {},
    );
    expect(config.notify[0]).toMatchObject({
      url: "",
      missing: { field: "notify[0].url", variable: "NO_SUCH_HOOK_VARIABLE", empty: false },
    });
    const sent: string[] = [];
    const notifier = new Notifier(config.notify, "api", async (url) => {
      sent.push(url);
      return 200;
    });
    notifier.observe(begin);
    expect(await notifier.flush()).toEqual([
      "notify[0] (json, begin): not sent: $NO_SUCH_HOOK_VARIABLE is not set here",
    ]);
    expect(sent).toEqual([]);
  });
});

describe("sending notifications", () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  /** A webhook on loopback that records what it receives and answers `status`. */
  async function webhook(status = 200) {
    const received: { path: string; body: any }[] = [];
    const server = http.createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => {
        text += chunk;
      });
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: JSON.parse(text) });
        res.writeHead(status).end("ok");
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
  }

  it("a loopback webhook receives Slack-shaped and JSON notifications, each filtered by severity", async () => {
    const slack = await webhook();
    const json = await webhook();
    const notifier = new Notifier(
      [
        { url: `${slack.url}/services/T/B/secret`, format: "slack", severity: "error", timeout: 2000 },
        { url: json.url, format: "json", severity: "info", timeout: 2000 },
      ],
      "api",
    );
    for (const e of [
      begin,
      breach,
      summary("failed", [{ server: "alpha", result: "rolled back", note: "watch" }]),
    ])
      notifier.observe(e);
    expect(await notifier.flush()).toEqual([]);
    expect(slack.received.map((r) => r.path)).toEqual(["/services/T/B/secret", "/services/T/B/secret"]);
    expect(slack.received.map((r) => Object.keys(r.body))).toEqual([["text"], ["text"]]);
    expect(slack.received[0]?.body.text).toMatch(
      /^:x: api: nexus deploy r2: alpha failed its watch: errors 2\.4%/,
    );
    expect(json.received.map((r) => r.body.kind).sort()).toEqual(["begin", "rollback", "watch-breach"]);
  });

  it("a webhook that fails, answers an error or never answers is a warning that names no URL", async () => {
    const failing = await webhook(500);
    const silent = http.createServer(() => {});
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hook-secret`;
    silent.closeAllConnections?.();
    // A port nothing listens on: one a server had a moment ago.
    const gone = await webhook();
    const goneUrl = `${gone.url}/hook-secret`;
    await new Promise((resolve) => servers.pop()?.close(resolve));
    const notifier = new Notifier(
      [
        { url: `${failing.url}/hook-secret`, format: "json", severity: "info", timeout: 2000 },
        { url: silentUrl, format: "slack", severity: "info", timeout: 300 },
        { url: goneUrl, format: "json", severity: "info", timeout: 2000 },
      ],
      "api",
    );
    notifier.observe(begin);
    const warnings = await notifier.flush();
    expect(warnings).toEqual([
      "notify[0] (json, begin): the webhook answered HTTP 500",
      "notify[1] (slack, begin): not delivered: no answer in 0.3s",
      "notify[2] (json, begin): not delivered: ECONNREFUSED",
    ]);
    for (const w of warnings) expect(w).not.toContain("hook-secret");
    setTimeout(() => silent.closeAllConnections?.(), 0);
  });

  it("through the CLI's reporters: masked events, warnings before the summary, the summary last", async () => {
    const hook = await webhook(503);
    const config = resolveConfig(
      {
        app: { name: "api" },
        servers: [{ name: "alpha", host: "10.0.0.1", env: { API_TOKEN: "tok-123456789" } }],
        balancer: { host: "alpha", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
        notify: [{ url: { fromEnv: "HOOK" } }],
      },
      "deploy.config.json",
      "/project",
      { HOOK: `${hook.url}/secret-path` },
    );
    maskSecretsOf(config);
    notifyFrom(config.notify, config.app.name);
    const seen: DeployEvent[] = [];
    const notifying = notifyingReporter({ emit: (e) => seen.push(e), print: () => {}, close: () => {} });
    const reporter = maskingReporter(notifying);
    reporter.emit(begin);
    reporter.emit({ type: "warn", message: `the webhook ${hook.url}/secret-path and tok-123456789` });
    reporter.emit(summary("failed", [{ server: "alpha", result: "restored", note: "token tok-123456789" }]));
    expect(seen.map((e) => e.type)).toEqual(["begin", "warn"]);
    await notifying.flush();
    expect(seen.map((e) => e.type)).toEqual(["begin", "warn", "warn", "warn", "summary"]);
    expect(JSON.stringify(seen)).not.toContain("secret-path");
    expect(JSON.stringify(seen)).not.toContain("tok-123456789");
    expect(seen.slice(2, 4)).toEqual([
      { type: "warn", message: "notify[0] (json, begin): the webhook answered HTTP 503" },
      { type: "warn", message: "notify[0] (json, failure): the webhook answered HTTP 503" },
    ]);
    expect(hook.received.map((r) => r.body.kind)).toEqual(["begin", "failure"]);
    expect(JSON.stringify(hook.received)).not.toContain("tok-123456789");
    notifyFrom([], "api");
  });
});
