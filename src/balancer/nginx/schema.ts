import * as z from "zod";
import { duration, nonEmpty } from "../../config/fields.js";

/** `balancer` (or one entry of a list) with `type: "nginx"`, the default when `type` is left out. */
export const nginxBalancerSchema = z.strictObject({
  type: z.literal("nginx").default("nginx"),
  /** Name of the server that runs Nginx, or "local" when it runs where nexus runs. */
  host: nonEmpty,
  /**
   * Path of the servers file on the balancer host: the `server` lines, included inside the
   * upstream block (or, less safely, a file holding the whole block).
   */
  upstreamFile: nonEmpty,
  /** Name of the upstream block, when the file holds several. */
  upstream: nonEmpty.optional(),
  testCommand: nonEmpty.default("nginx -t"),
  reloadCommand: nonEmpty.default("nginx -s reload"),
  /** The Nginx master's pid file: nexus waits until a reload is really in force. */
  pidFile: nonEmpty.default("/run/nginx.pid"),
  /** How long to wait for in-flight requests to a drained server to finish. */
  drainTimeout: duration.default(30_000),
  /** The access log on the balancer host, in the `nexus` log format; read by `rolling.watch`. */
  accessLog: nonEmpty.default("/var/log/nginx/access.log"),
});

export type NginxBalancerConfig = z.output<typeof nginxBalancerSchema>;
