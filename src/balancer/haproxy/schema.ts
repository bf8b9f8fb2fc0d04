import * as z from "zod";
import { duration, nonEmpty } from "../../config/fields.js";

/** A name HAProxy accepts for a backend or server (and that needs no quoting in a runtime API command). */
const haproxyName = nonEmpty.regex(/^[A-Za-z0-9_.:-]+$/, "use letters, digits, '_', '.', ':' or '-'");

/** `balancer` (or one entry of a list) with `type: "haproxy"`. */
export const haproxyBalancerSchema = z.strictObject({
  type: z.literal("haproxy"),
  /** Name of the server that runs HAProxy, or "local" when it runs where nexus runs. */
  host: nonEmpty,
  /** The admin socket (`stats socket PATH level admin`) on the balancer host. */
  socket: nonEmpty
    .regex(/^[A-Za-z0-9_./~+@-]+$/, "use a plain path (letters, digits, '_', '.', '/', '~', '+', '@', '-')")
    .default("/run/haproxy/admin.sock"),
  /** The HAProxy backend that holds the servers. */
  backend: haproxyName,
  /** HAProxy server name per nexus server name, where they differ (default: the nexus server name). */
  servers: z.record(nonEmpty, haproxyName).default({}),
  /**
   * The `server-state-file` HAProxy loads at start (`load-server-state-from-file global`): nexus
   * saves the runtime state there after each change, so a restart keeps drained servers drained.
   */
  stateFile: nonEmpty.optional(),
  /** How long to wait for the sessions of a drained server to end. */
  drainTimeout: duration.default(30_000),
});

export type HaproxyBalancerConfig = z.output<typeof haproxyBalancerSchema>;
