import type { NotifyConfig } from "../config/load.js";
import type { DeployEvent } from "../events/events.js";
import { EVENTS_SCHEMA_VERSION } from "../events/schema.js";

/**
 * What a webhook is told, and in which shape: pure functions from the event stream to
 * notifications and request bodies. Sending is `notifier.ts`.
 */

export type Severity = NotifyConfig["severity"];
const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2, critical: 3 };

export type NotificationKind =
  | "begin"
  | "success"
  | "failure"
  | "rollback"
  | "interrupted"
  | "watch-breach"
  | "watch-inconclusive"
  | "needs-human";

export interface Notification {
  kind: NotificationKind;
  severity: Severity;
  /** One line (a few for a failure) for people. */
  text: string;
  /** The `--json` event it comes from. */
  event: DeployEvent;
}

/** What the notifier remembers of the command so far: its begin event gives the words context. */
export interface CommandContext {
  app: string;
  command?: string;
  release?: string;
}

/** The notification an event gives rise to, if any; `context` is updated by begin events. */
export function notificationFor(event: DeployEvent, context: CommandContext): Notification | undefined {
  const what = () =>
    `${context.app}: nexus ${context.command ?? "command"}${context.release ? ` ${context.release}` : ""}`;
  switch (event.type) {
    case "begin":
      context.command = event.command;
      context.release = event.release;
      return {
        kind: "begin",
        severity: "info",
        text: `${what()} started on ${event.servers.join(", ")}`,
        event,
      };
    case "watch":
      if (event.result === "breach")
        return {
          kind: "watch-breach",
          severity: "error",
          text: `${what()}: ${event.server} failed its watch: ${event.message}`,
          event,
        };
      if (event.result === "inconclusive" || event.result === "unjudged")
        return {
          kind: "watch-inconclusive",
          severity: "warning",
          text: `${what()}: ${event.server}'s watch was inconclusive: ${event.message}`,
          event,
        };
      return undefined;
    case "summary": {
      if (event.release) context.release = event.release;
      const notes = event.rows
        .filter((r) => r.result !== "deployed" && r.result !== "not reached" && r.note)
        .map((r) => `${r.server} (${r.result}): ${r.note}`);
      const details = notes.length > 0 ? `\n${notes.join("\n")}` : "";
      const took = `in ${event.seconds.toFixed(1)}s, exit ${event.exitCode}`;
      if (event.outcome === "needs-human")
        return {
          kind: "needs-human",
          severity: "critical",
          text: `${what()} needs a human (${took})${details}`,
          event,
        };
      if (event.outcome === "interrupted")
        return {
          kind: "interrupted",
          severity: "warning",
          text: `${what()} was interrupted (${took})${details}`,
          event,
        };
      if (event.outcome === "failed") {
        const rolledBack = event.rows.some((r) => r.result === "rolled back");
        return rolledBack
          ? {
              kind: "rollback",
              severity: "error",
              text: `${what()} failed and was rolled back (${took})${details}`,
              event,
            }
          : { kind: "failure", severity: "error", text: `${what()} failed (${took})${details}`, event };
      }
      if (context.command === "rollback")
        return { kind: "rollback", severity: "warning", text: `${what()} done (${took})`, event };
      return { kind: "success", severity: "info", text: `${what()} done (${took})`, event };
    }
    default:
      return undefined;
  }
}

/** Whether a target wants a notification of this severity. */
export function wanted(target: Pick<NotifyConfig, "severity">, notification: Notification): boolean {
  return SEVERITY_RANK[notification.severity] >= SEVERITY_RANK[target.severity];
}

const SLACK_MARK: Record<Severity, string> = {
  info: ":information_source:",
  warning: ":warning:",
  error: ":x:",
  critical: ":rotating_light:",
};

/** Slack's incoming-webhook body: `text` is what the message shows (and notifications read). */
export function slackBody(notification: Notification): { text: string } {
  // Slack reads &, < and > as markup in text: escaped as its docs ask.
  const text = notification.text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return { text: `${SLACK_MARK[notification.severity]} ${text}` };
}

/** nexus's own body (docs/events.md, "notify"): the words, and the `--json` event they come from. */
export function jsonBody(notification: Notification, context: CommandContext, time: Date = new Date()) {
  return {
    v: EVENTS_SCHEMA_VERSION,
    time: time.toISOString(),
    type: "notify" as const,
    kind: notification.kind,
    severity: notification.severity,
    app: context.app,
    command: context.command,
    release: context.release,
    text: notification.text,
    event: notification.event,
  };
}
