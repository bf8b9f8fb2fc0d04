// Reads the NEXUS_SSH_TRACE file of one CLI run (src/ssh/trace.ts): what each server opened.
import { existsSync, readFileSync } from "node:fs";

export const KINDS = ["connect", "channel", "shell", "sftp", "forward"];

/**
 * Counts per kind (for the whole command and per server), and per step: which steps paid for
 * the exec channels (a login-shell start each), the remote shell's exchanges and the SFTP requests.
 */
export function summarizeTrace(file) {
  const entries = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    : [];
  const total = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const servers = new Map();
  const steps = new Map();
  for (const e of entries) {
    total[e.kind] = (total[e.kind] ?? 0) + 1;
    const s = servers.get(e.server) ?? Object.fromEntries(KINDS.map((k) => [k, 0]));
    s[e.kind] = (s[e.kind] ?? 0) + 1;
    servers.set(e.server, s);
    const key = `${e.kind}\u0000${e.what}`;
    const step = steps.get(key) ?? { kind: e.kind, what: e.what, count: 0, ms: 0 };
    step.count++;
    step.ms += e.ms;
    steps.set(key, step);
  }
  return {
    total,
    servers: Object.fromEntries(servers),
    steps: [...steps.values()].sort((a, b) => b.count - a.count || a.what.localeCompare(b.what)),
  };
}
