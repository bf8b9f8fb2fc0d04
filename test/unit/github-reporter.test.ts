import { describe, expect, it } from "vitest";
import type { DeployEvent } from "../../src/events/events.js";
import {
  escapeData,
  escapeProperty,
  GithubReporter,
  outputEntry,
  summaryMarkdown,
} from "../../src/report/github.js";

function harness(env: NodeJS.ProcessEnv = { GITHUB_STEP_SUMMARY: "/summary", GITHUB_OUTPUT: "/output" }) {
  const lines: string[] = [];
  const files = new Map<string, string>();
  const reporter = new GithubReporter({
    env,
    write: (line) => lines.push(line),
    append: (file, text) => files.set(file, (files.get(file) ?? "") + text),
  });
  return { reporter, lines, files };
}

const summary: Extract<DeployEvent, { type: "summary" }> = {
  type: "summary",
  outcome: "success",
  release: "20261126T204501Z-1a2b3c4",
  exitCode: 0,
  seconds: 12.34,
  rows: [
    { server: "alpha", result: "deployed", release: "20261126T204501Z-1a2b3c4", outOfRotation: 0.8 },
    { server: "beta", result: "not reached", note: "a | b\nc <d>" },
  ],
};

describe("workflow command escaping", () => {
  it("escapes %, CR and LF in data, and also : and , in properties", () => {
    expect(escapeData("100% done\r\nnext")).toBe("100%25 done%0D%0Anext");
    expect(escapeProperty("nexus: a,b")).toBe("nexus%3A a%2Cb");
  });

  it("writes single-line outputs as name=value and multi-line ones as a heredoc", () => {
    expect(outputEntry("result", "success")).toBe("result=success\n");
    const entry = outputEntry("note", "one\ntwo");
    const [first, ...rest] = entry.trimEnd().split("\n");
    const delimiter = first?.replace("note<<", "");
    expect(delimiter).toMatch(/^ghadelimiter_/);
    expect(rest).toEqual(["one", "two", delimiter]);
  });
});

describe("GithubReporter", () => {
  it("folds each phase in a group, closing the previous one; groups never nest", () => {
    const { reporter, lines } = harness();
    reporter.emit({ type: "begin", command: "deploy", release: "r1", servers: ["alpha", "beta"] });
    reporter.emit({ type: "phase", phase: "stage", message: "staging r1 on 2 server(s)" });
    reporter.emit({ type: "step", server: "alpha", step: "upload", status: "done", ms: 120 });
    reporter.emit({ type: "phase", phase: "roll", message: "batch 1/2: alpha" });
    reporter.emit({ type: "phase", phase: "roll", message: "batch 2/2: beta" });
    reporter.emit(summary);
    reporter.close();
    const markers = lines.filter((l) => l.startsWith("::group::") || l === "::endgroup::");
    expect(markers).toEqual([
      "::group::stage: staging r1 on 2 server(s)",
      "::endgroup::",
      "::group::roll: batch 1/2: alpha",
      "::endgroup::",
      "::group::roll: batch 2/2: beta",
      "::endgroup::",
    ]);
    // The summary table comes after the last group, where it is visible without unfolding.
    const lastEnd = lines.lastIndexOf("::endgroup::");
    expect(lines.slice(lastEnd).join("\n")).toMatch(/server\s+result\s+release/);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d alpha: upload ok/.test(l))).toBe(true);
  });

  it("annotates errors, failed gates and warnings, escaped", () => {
    const { reporter, lines } = harness();
    reporter.emit({ type: "error", server: "alpha", message: "lock held: 100%\nby ci" });
    reporter.emit({ type: "error", message: "capacity guard" });
    reporter.emit({ type: "warn", server: "beta", message: "slow" });
    reporter.emit({
      type: "gate-failed",
      server: "gamma",
      reason: "status 500",
      timeline: ["  00.1s fail 500"],
      logs: ["boom"],
    });
    expect(lines).toContain("::error title=nexus%3A alpha::lock held: 100%25%0Aby ci");
    expect(lines).toContain("::error title=nexus::capacity guard");
    expect(lines).toContain("::warning title=nexus%3A beta::slow");
    expect(lines).toContain("::error title=nexus%3A gamma::health gate failed: status 500");
    expect(lines.some((l) => l.endsWith("gamma: health gate failed: status 500"))).toBe(true);
  });

  it("appends the summary table to $GITHUB_STEP_SUMMARY and writes release and result to $GITHUB_OUTPUT", () => {
    const { reporter, files } = harness();
    reporter.emit({ type: "begin", command: "deploy", release: summary.release, servers: ["alpha", "beta"] });
    reporter.emit(summary);
    reporter.close();
    reporter.close();
    const markdown = files.get("/summary") ?? "";
    expect(markdown).toContain(
      "### ✅ nexus deploy: done (release 20261126T204501Z-1a2b3c4) in 12.3s, exit 0",
    );
    expect(markdown).toContain("| server | result | release | out of rotation | note |");
    expect(markdown).toContain("| alpha | deployed | `20261126T204501Z-1a2b3c4` | 0.80s |  |");
    expect(markdown).toContain("| beta | not reached | - | - | a \\| b<br>c &lt;d&gt; |");
    expect(files.get("/output")).toBe("release=20261126T204501Z-1a2b3c4\nresult=success\n");
  });

  it("reports result=failed when the command failed before any summary", () => {
    const { reporter, files } = harness();
    reporter.emit({ type: "error", message: "deploy.config.json: app.name: required" });
    reporter.close();
    expect(files.get("/output")).toBe("result=failed\n");
    // Every outcome gets a step summary, this one too.
    expect(files.get("/summary")).toContain("### ❌ nexus command: failed, nothing deployed");
    expect(files.get("/summary")).toContain("> deploy.config.json: app.name: required");
  });

  it("sets the release output only when the summary leaves that release in service", () => {
    const { reporter, files } = harness();
    reporter.emit({ type: "begin", command: "deploy", release: "r9", servers: ["alpha"] });
    reporter.emit({
      ...summary,
      outcome: "failed",
      release: "r9",
      exitCode: 1,
      rows: [{ server: "alpha", result: "not reached", note: "connection refused" }],
    });
    reporter.close();
    expect(files.get("/output")).toBe("result=failed\n");
    expect(files.get("/summary")).toContain("| alpha | not reached |");
  });

  it("writes nothing when the GitHub files are not set", () => {
    const { reporter, files } = harness({});
    reporter.emit({ type: "begin", command: "deploy", release: "r", servers: [] });
    reporter.emit(summary);
    reporter.close();
    expect(files.size).toBe(0);
  });

  it("marks each outcome in the summary heading", () => {
    expect(summaryMarkdown("rollback", { ...summary, outcome: "needs-human", exitCode: 3 })).toMatch(
      /^### 🚨 nexus rollback: FAILED: some servers need a human/,
    );
  });
});
