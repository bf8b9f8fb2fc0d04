import type { NotifyConfig } from "../config/load.js";
import type { DeployEvent } from "../events/events.js";
import type { Reporter } from "../report/reporter.js";
import { type CommandContext, jsonBody, notificationFor, slackBody, wanted } from "./notification.js";

/** POSTs a JSON body; resolves with the HTTP status, rejects on a network error or the timeout. */
export type Post = (url: string, body: unknown, timeoutMs: number) => Promise<number>;

const post: Post = async (url, body, timeoutMs) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.arrayBuffer().catch(() => undefined);
  return response.status;
};

/**
 * Why a notification failed, in words that never hold the URL (a webhook URL is its own secret):
 * the HTTP status, the timeout, or the network error's code.
 */
function failureWords(error: unknown, timeoutMs: number): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return `no answer in ${timeoutMs / 1000}s`;
  const words = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? "error";
  return words.replace(/[a-z][a-z0-9+.-]*:\/\/\S*/gi, "<url>");
}

/**
 * Sends deploy events to the `notify` webhooks. A notification that fails is a warning, never a
 * failed command. Sends start as events come; `flush` waits for them (each bounded by its
 * target's timeout) and returns the warnings.
 */
export class Notifier {
  private readonly context: CommandContext;
  private readonly sending: Promise<string | undefined>[] = [];

  constructor(
    private readonly targets: readonly NotifyConfig[],
    app: string,
    private readonly send: Post = post,
  ) {
    this.context = { app };
  }

  observe(event: DeployEvent): void {
    const notification = notificationFor(event, this.context);
    if (!notification) return;
    this.targets.forEach((target, index) => {
      if (!wanted(target, notification)) return;
      const body = target.format === "slack" ? slackBody(notification) : jsonBody(notification, this.context);
      const label = `notify[${index}] (${target.format}, ${notification.kind})`;
      if (target.missing) {
        const { variable, empty } = target.missing;
        this.sending.push(
          Promise.resolve(`${label}: not sent: $${variable} is ${empty ? "empty" : "not set"} here`),
        );
        return;
      }
      this.sending.push(
        this.send(target.url, body, target.timeout).then(
          (status) =>
            status >= 200 && status < 300 ? undefined : `${label}: the webhook answered HTTP ${status}`,
          (error) => `${label}: not delivered: ${failureWords(error, target.timeout)}`,
        ),
      );
    });
  }

  async flush(): Promise<string[]> {
    const results = await Promise.all(this.sending.splice(0));
    return results.filter((r): r is string => r !== undefined);
  }
}

/** The webhooks of the config this run read (set when the CLI reads it: one config per process). */
let current: Notifier | undefined;

export function notifyFrom(targets: readonly NotifyConfig[], app: string, send?: Post): void {
  current = targets.length > 0 ? new Notifier(targets, app, send) : undefined;
}

/**
 * The reporter, each event also offered to the webhooks. The summary is held back until `flush`,
 * so that a failed notification's warning still comes before it (the summary is a command's last event).
 */
export function notifyingReporter(inner: Reporter): Reporter & { flush(): Promise<void> } {
  let held: DeployEvent | undefined;
  return {
    emit(event) {
      current?.observe(event);
      if (current && event.type === "summary") held = event;
      else inner.emit(event);
    },
    print: (line) => inner.print(line),
    close: () => inner.close(),
    async flush() {
      const warnings = (await current?.flush()) ?? [];
      for (const message of warnings) inner.emit({ type: "warn", message });
      if (held) inner.emit(held);
      held = undefined;
    },
  };
}
