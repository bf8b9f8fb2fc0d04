import type { ServerState } from "./stats.js";

/**
 * The second backend line of a server, for the surge strategy: `<name>-surge`. A switch readies it
 * on the new process's address and drains the line in use, so HAProxy never again picks a
 * connection it holds to the old process (a client session keeps its server connection across
 * requests, and `set server … addr` does not move those).
 */
export function standbyName(name: string): string {
  return `${name}-surge`;
}

/** A server's lines in the backend: the one that carries its traffic, and its standby, if any. */
export interface ServerLines {
  live: ServerState | undefined;
  standby: ServerState | undefined;
}

/**
 * The live line has a weight; the standby waits in maintenance with weight 0. Mid-switch (the new
 * line ready, the old one draining) both have one: the line not draining is live. With no standby
 * line (a backend written before surge) the server's one line is live.
 */
export function serverLines(states: readonly ServerState[], name: string): ServerLines {
  const primary = states.find((s) => s.server === name);
  const spare = states.find((s) => s.server === standbyName(name));
  if (!primary || !spare) return { live: primary, standby: undefined };
  const weighted = [primary, spare].filter((s) => (s.weight ?? 1) > 0);
  const live = weighted.length === 1 ? weighted[0] : (weighted.find((s) => !s.maint && !s.drain) ?? primary);
  return { live, standby: live === primary ? spare : primary };
}

/** "10.0.0.2:3001" (or "[::1]:3001") of a line, as nexus writes addresses. */
export function lineAddress(line: ServerState): string | undefined {
  if (!line.port) return undefined;
  return `${line.address.includes(":") ? `[${line.address}]` : line.address}:${line.port}`;
}
