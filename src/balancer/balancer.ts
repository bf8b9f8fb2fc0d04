import type { ServerConfig } from "../config/load.js";

export interface BackendState {
  server: string;
  upstream: string;
  /** Listed in the upstream block at all. */
  present: boolean;
  inRotation: boolean;
  /** The address the balancer sends the server's traffic to now ("10.0.0.2:3001"), when known. */
  address?: string;
}

/** A server's entry moved to another address (the surge strategy's port switch). */
export interface AddressMove {
  server: ServerConfig;
  /** "host:port", one of the server's `upstream` and `surgeUpstream`. */
  to: string;
}

export interface RotationChange {
  drain?: readonly ServerConfig[];
  enable?: readonly ServerConfig[];
  /**
   * The capacity guard's floor, for a balancer that can see another command's change land between
   * the guard's look and this write (Nginx's compare-and-swap): the drain is then refused if it
   * would leave fewer of `servers` in rotation than the guard saw, and fewer than `min`.
   */
  keepInRotation?: { servers: readonly ServerConfig[]; min: number };
  /**
   * Entries moved to another address (surge), in the same change: their rotation state stays.
   * Nginx waits then for every worker from before the reload, as for a drain (they still route to
   * the old address).
   */
  move?: readonly AddressMove[];
}

/** What nexus needs from a load balancer (balancer/<driver>/ implements it). */
export interface Balancer {
  readonly host: string;
  /**
   * True when every change costs something clients can feel (an Nginx reload): a batch that
   * passed its gate then goes back in rotation in the same change that drains the next batch.
   * A runtime API (HAProxy) changes for free, so a batch goes back at once.
   */
  readonly sharesChanges: boolean;
  state(servers: readonly ServerConfig[]): Promise<BackendState[]>;
  /**
   * One change of rotation: `drain` leaves it, `enable` comes back, applied together (for Nginx,
   * one validated reload), so enabling one server and draining the next costs a single reload.
   */
  apply(change: RotationChange): Promise<void>;
  /**
   * Waits until the balancer holds no connection to the server, or the timeout passes. With
   * `shutAtTimeout`, a balancer that can close a server's sessions itself (HAProxy's runtime API)
   * does so for those still open at the timeout (long-lived: WebSockets, SSE), and says how many.
   */
  waitDrained(server: ServerConfig, timeoutMs: number, options?: DrainWaitOptions): Promise<DrainWait>;
  /**
   * Waits until the balancer holds no connection to `address` (a server's old address after a
   * `move`), or the timeout passes.
   */
  waitLeft(server: ServerConfig, address: string, timeoutMs: number): Promise<DrainWait>;
  /** Waits for what the driver does after a change returned (HAProxy's state file writes). */
  settle?(): Promise<void>;
  /**
   * Finishes what the driver left running (HAProxy's state file writes) and ends what it keeps
   * open between changes (HAProxy's admin socket connection). Before the sessions close.
   */
  close?(): Promise<void>;
}

/** What still holds a server whose drain wait timed out, in words. */
export function stillOpen(wait: DrainWait): string {
  return wait.detail || `${wait.open} connection(s) still open`;
}

export interface DrainWaitOptions {
  /** Close the server's sessions still open at the timeout, if the balancer can (HAProxy). */
  shutAtTimeout?: boolean;
}

export interface DrainWait {
  drained: boolean;
  /** What still holds the server when not drained (connections, retired Nginx workers). */
  open: number;
  /**
   * Of `open`, the client connections to the server itself (Nginx: TCP connections from the
   * balancer host to its address; HAProxy: its sessions), when counted: at a timeout, the
   * long-lived ones (WebSockets, SSE) a restart would cut.
   */
  connections?: number;
  /** Of `connections`, those the balancer closed itself at the timeout (HAProxy's `shutdown sessions server`). */
  shut?: number;
  /**
   * In words: what the wait waited for (Nginx: "in-flight requests done in 0.15s, …"), or when
   * not drained, what is still open. Shown on the drain step, and in the timeout's warning.
   */
  detail?: string;
}
