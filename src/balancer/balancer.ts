import type { ServerConfig } from "../config/load.js";

export interface BackendState {
  server: string;
  upstream: string;
  /** Listed in the upstream block at all. */
  present: boolean;
  inRotation: boolean;
}

/** What nexus needs from a load balancer. The Nginx driver is the one implementation today. */
export interface Balancer {
  readonly host: string;
  state(servers: readonly ServerConfig[]): Promise<BackendState[]>;
  /** Takes servers out of rotation (down=true) or puts them back; one validated reload for all. */
  setDown(servers: readonly ServerConfig[], down: boolean): Promise<void>;
  /** Waits until the balancer holds no connection to the server, or the timeout passes. */
  waitDrained(server: ServerConfig, timeoutMs: number): Promise<{ drained: boolean; open: number }>;
}
