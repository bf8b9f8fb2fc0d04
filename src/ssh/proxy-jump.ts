import { UsageError } from "../errors.js";

/** ProxyJump values as written (the config loader checks them; `jump.ts` resolves them). */

/** One hop of a ProxyJump chain, as written: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface HopSpec {
  user?: string;
  host: string;
  port?: number;
}

/**
 * Parses a ProxyJump value: hops separated by commas, each `[user@]host[:port]` or
 * `ssh://[user@]host[:port]`, an IPv6 address in brackets. "none": no jump (returns []).
 */
export function parseProxyJump(value: string, field = "proxyJump"): HopSpec[] {
  const text = value.trim();
  if (text.toLowerCase() === "none") return [];
  return text.split(",").map((raw) => {
    const hop = raw.trim().replace(/^ssh:\/\//i, "");
    const match = /^(?:([^@\s/]+)@)?(\[[0-9A-Fa-f:.]+\]|[^\s:@/[\]]+)(?::(\d{1,5}))?\/?$/.exec(hop);
    const port = match?.[3] === undefined ? undefined : Number(match[3]);
    if (!match || (port !== undefined && (port < 1 || port > 65535))) {
      throw new UsageError(
        `${field}: "${raw.trim()}" is not a jump host: expected [user@]host[:port], hops separated by commas`,
      );
    }
    const host = (match[2] as string).replace(/^\[(.*)\]$/, "$1");
    return { ...(match[1] ? { user: match[1] } : {}), host, ...(port !== undefined ? { port } : {}) };
  });
}

/** How `ssh -G` prints a chain: hops as `[user@]host[:port]`, commas between. */
export function formatProxyJump(hops: readonly HopSpec[]): string {
  return hops
    .map(
      (h) =>
        `${h.user ? `${h.user}@` : ""}${h.host.includes(":") ? `[${h.host}]` : h.host}${h.port ? `:${h.port}` : ""}`,
    )
    .join(",");
}
