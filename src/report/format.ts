import type { ConnectionsCut, DeployEvent, SummaryRow } from "../events/events.js";
import { percent } from "../watch/judge.js";

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** One line of text for an event, without colour; undefined for events with no line of their own. */
export function describeEvent(event: DeployEvent): string | undefined {
  switch (event.type) {
    case "begin":
      return `${event.command}${event.release ? ` ${event.release}` : ""}${event.destination ? ` (-d ${event.destination})` : ""} → ${event.servers.join(", ")}`;
    case "phase":
      return `== ${event.phase}: ${event.message}`;
    case "step": {
      const timing = event.ms !== undefined ? ` (${formatMs(event.ms)})` : "";
      const note = event.message ? `: ${event.message}` : "";
      if (event.status === "start") return undefined;
      return `${event.server}: ${event.step} ${event.status === "done" ? "ok" : "FAILED"}${timing}${note}`;
    }
    case "progress":
      return undefined;
    case "info":
      return event.server ? `${event.server}: ${event.message}` : event.message;
    case "warn":
      return `warning: ${event.server ? `${event.server}: ` : ""}${event.message}`;
    case "error":
      return `error: ${event.server ? `${event.server}: ` : ""}${event.message}`;
    case "gate-failed":
      return [
        `${event.server}: health gate failed: ${event.reason}`,
        "  probe timeline (time, result, status, latency, detail):",
        ...event.timeline,
        ...(event.logs.length > 0
          ? ["  last lines of the app's error log:", ...event.logs.map((l) => `    ${l}`)]
          : []),
      ].join("\n");
    case "watch":
      return describeWatch(event);
    case "hook": {
      const where = event.server ? `${event.server}: ` : "";
      const timing = event.ms !== undefined ? ` (${formatMs(event.ms)})` : "";
      if (event.status === "start") return `${where}hook ${event.hook}: $ ${event.message ?? ""}`;
      if (event.status === "output") return `${where}${event.hook} | ${event.message ?? ""}`;
      const note = event.message ? `: ${event.message}` : "";
      return `${where}hook ${event.hook} ${event.status === "done" ? "ok" : "FAILED"}${timing}${note}`;
    }
    case "log":
      return `${event.server} ${event.stream === "err" ? "!" : "|"} ${event.line}`;
    case "summary":
      return undefined;
  }
}

const formatRate = percent;

function describeWatch(event: Extract<DeployEvent, { type: "watch" }>): string {
  const verdict = {
    pass: "watch ok",
    breach: "watch FAILED",
    unjudged: "watch passed unjudged",
    inconclusive: "watch INCONCLUSIVE",
    interrupted: "watch interrupted",
  }[event.result];
  return `${event.server}: ${verdict} (${event.seconds.toFixed(1)}s): ${event.message}`;
}

/** "6.7% (7/104), p99 412 ms", for the summary's watched column. */
export function formatWatched(watched: SummaryRow["watched"]): string {
  if (!watched) return "-";
  const p99 = watched.p99 !== undefined ? `, p99 ${Math.round(watched.p99)} ms` : "";
  return `${formatRate(watched.rate)} (${watched.failures}/${watched.requests})${p99}`;
}

/** Left-aligned columns: the header, a rule, then the rows. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

export function summaryTable(rows: readonly SummaryRow[]): string[] {
  // The watched column only when rolling.watch ran: the table is unchanged otherwise.
  const watch = rows.some((r) => r.watched !== undefined);
  // Likewise the connections a drain's timeout cut, only when some were.
  const cut = rows.some((r) => r.connectionsCut !== undefined);
  return renderTable(
    [
      "server",
      "result",
      "release",
      "out of rotation",
      ...(watch ? ["watched"] : []),
      ...(cut ? ["connections cut"] : []),
      "note",
    ],
    rows.map((r) => [
      r.server,
      r.result,
      r.release ?? "-",
      r.outOfRotation !== undefined ? `${r.outOfRotation.toFixed(2)}s` : "-",
      ...(watch ? [formatWatched(r.watched)] : []),
      ...(cut ? [formatConnectionsCut(r.connectionsCut)] : []),
      r.note ?? "",
    ]),
  );
}

/** The summary's "connections cut" cell: "3 (balancer)", "2 (restart)", "1 (balancer) + 2 (restart)", or "-". */
export function formatConnectionsCut(cut: ConnectionsCut | undefined): string {
  if (!cut) return "-";
  const parts = [
    ...(cut.byBalancer > 0 ? [`${cut.byBalancer} (balancer)`] : []),
    ...(cut.byRestart > 0 ? [`${cut.byRestart} (restart)`] : []),
  ];
  return parts.length > 0 ? parts.join(" + ") : "0";
}

export function outcomeLine(event: Extract<DeployEvent, { type: "summary" }>): string {
  const what = {
    success: "done",
    failed: "FAILED: the fleet was restored",
    "needs-human": "FAILED: some servers need a human (see above)",
    interrupted: "INTERRUPTED: servers in hand were put back in rotation",
  }[event.outcome];
  return `${what}${event.release ? ` (release ${event.release})` : ""} in ${event.seconds.toFixed(1)}s, exit ${event.exitCode}`;
}
