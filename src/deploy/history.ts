import os from "node:os";
import { type RemoteOp, runOp } from "../remote/op.js";
import { appendHistory } from "../remote/server-state.js";
import type { Host } from "./fleet.js";

/** Appends one line to the host's history.jsonl: what happened, when, and who did it from where. */
export async function recordHistory(
  host: Host,
  event: string,
  details: Record<string, unknown>,
): Promise<void> {
  await runOp(host.session, historyLine(host, event, details));
}

/** The op that appends that line. */
export function historyLine(host: Host, event: string, details: Record<string, unknown>): RemoteOp<void> {
  return appendHistory(host.layout, {
    time: new Date().toISOString(),
    event,
    ...details,
    user: os.userInfo().username,
    from: os.hostname(),
  });
}
