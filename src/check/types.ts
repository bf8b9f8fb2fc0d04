export type CheckStatus = "ok" | "warn" | "fail";

/** One line of `nexus check`: what was looked at on which target, and what to do when it is wrong. */
export interface CheckItem {
  /** A server's name, or "<host> (balancer)". */
  target: string;
  check: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface CheckReport {
  ok: boolean;
  items: CheckItem[];
}

export function report(items: CheckItem[]): CheckReport {
  return { ok: items.every((i) => i.status !== "fail"), items };
}
