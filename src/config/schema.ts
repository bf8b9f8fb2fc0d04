import { z } from "zod";
import { duration } from "./duration.js";

const nonEmpty = z.string().min(1, "must not be empty");
const port = z.number().int().min(1).max(65535);
const envMap = z.record(z.string(), z.string());

export const appSchema = z.strictObject({
  /** Directory of the app to ship, relative to the config file. */
  root: nonEmpty.default("."),
  /** PM2 process name and the name used in default paths. */
  name: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-'"),
  /** Entry script, relative to the app root. */
  start: nonEmpty.default("server.js"),
  /** Port the app listens on (the upstream and health port unless overridden). */
  port: port.default(3000),
  /** Extra exclude patterns for the artifact (node_modules, logs, *.log and .git are always excluded). */
  exclude: z.array(nonEmpty).default([]),
  /** Optional local build command run in the app root before packing. */
  build: nonEmpty.optional(),
});

export const serverSchema = z.strictObject({
  name: nonEmpty,
  /** Address sshd listens on. */
  host: nonEmpty,
  /** SSH port. */
  port: port.default(22),
  user: nonEmpty.optional(),
  deployPath: nonEmpty.optional(),
  /** This server's address as written in the Nginx upstream file; defaults to host:app.port. */
  upstream: nonEmpty.optional(),
  env: envMap.default({}),
});

export const sshSchema = z.strictObject({
  user: nonEmpty.optional(),
  /** Path to a private key file. */
  privateKey: nonEmpty.optional(),
  /** Name of an environment variable that holds a private key (CI secrets). */
  privateKeyEnv: nonEmpty.default("NEXUS_SSH_KEY"),
  /** Name of an environment variable that holds the key's passphrase. */
  passphraseEnv: nonEmpty.default("NEXUS_SSH_PASSPHRASE"),
  /** Use the SSH agent at SSH_AUTH_SOCK when it is set. */
  agent: z.boolean().default(true),
  knownHosts: nonEmpty.default("~/.ssh/known_hosts"),
  /** OpenSSH client config: a server whose host is a `Host` alias there gets its HostName, User, Port and IdentityFile. */
  configFile: nonEmpty.default("~/.ssh/config"),
  /** "strict": unknown keys stop the command; "accept-new": unknown keys are learned, changed keys still stop. */
  hostKeys: z.enum(["strict", "accept-new"]).default("strict"),
  readyTimeout: duration.default(20_000),
  keepaliveInterval: duration.default(5_000),
});

export const transferSchema = z.strictObject({
  /** "auto": SFTP, then HTTP if SFTP is unavailable, fails or delivers a bad checksum; or only one of them. */
  method: z.enum(["auto", "sftp", "http"]).default("auto"),
  /** "host:port" the HTTP fallback listens on (port 0: any free port); default: this end of each server's SSH connection. */
  listen: nonEmpty
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected "host:port", such as "127.0.0.1:0"')
    .optional(),
  /** Base URL the servers fetch the artifact from (NAT, port forward, proxy); default: http://<listen address>. */
  url: nonEmpty.regex(/^https?:\/\/\S+$/, 'expected a base URL such as "http://10.0.0.5:8099"').optional(),
  /** How long the HTTP fallback serves the artifact to one server. */
  timeout: duration.default(600_000),
});

export const pm2Schema = z.strictObject({
  /** PM2 process name; defaults to app.name. */
  name: nonEmpty.optional(),
  env: envMap.default({}),
  /** How long PM2 waits for the app to exit after SIGINT before it kills it. */
  killTimeout: duration.default(10_000),
});

export const balancerSchema = z.strictObject({
  type: z.literal("nginx").default("nginx"),
  /** Name of the server that runs Nginx, or "local" when it runs where nexus runs. */
  host: nonEmpty,
  /** Path of the file holding the upstream block, on the balancer host. */
  upstreamFile: nonEmpty,
  /** Name of the upstream block, when the file holds several. */
  upstream: nonEmpty.optional(),
  testCommand: nonEmpty.default("nginx -t"),
  reloadCommand: nonEmpty.default("nginx -s reload"),
  /** The Nginx master's pid file: nexus waits until a reload is really in force. */
  pidFile: nonEmpty.default("/run/nginx.pid"),
  /** How long to wait for in-flight requests to a drained server to finish. */
  drainTimeout: duration.default(30_000),
});

export const healthSchema = z.strictObject({
  path: nonEmpty.regex(/^\//, "must start with '/'").default("/health"),
  /** Defaults to app.port. */
  port: port.optional(),
  /** "ssh": probe through the server's own SSH connection (private app ports); "direct": from here. */
  via: z.enum(["ssh", "direct"]).default("ssh"),
  interval: duration.default(100),
  timeout: duration.default(2_000),
  /** Consecutive passing probes needed. */
  passes: z.number().int().min(1).default(3),
  deadline: duration.default(60_000),
  /**
   * The new process must also have stayed up this long (same pid, no PM2 restart) before the gate
   * passes: catches an app that answers /health and then crashes a moment later.
   */
  minUptime: duration.default(500),
  /**
   * The release reported by /health (`{"release": ...}`) must be the one just deployed: true
   * (a /health without one fails), false (never checked), "auto" (checked when reported; an app
   * whose /health answers plain `OK` is judged by its process: new pid, no restart, uptime).
   */
  checkRelease: z.union([z.boolean(), z.literal("auto")]).default("auto"),
});

export const rollingSchema = z.strictObject({
  /** Servers per batch: a number or a percentage of the fleet such as "25%". */
  batchSize: z
    .union([z.number().int().min(1), z.string().regex(/^\d{1,3}%$/, 'expected a percentage such as "25%"')])
    .default(1),
  onFailure: z.enum(["rollback-all", "halt"]).default("rollback-all"),
  /**
   * While a batch is out, at least this many other servers must be in rotation and healthy.
   * Defaults to 1 (0 for a single server).
   */
  minInRotation: z.number().int().min(0).optional(),
  /** Servers deployed alone first, as a canary batch, before the others (0: no canary). */
  canary: z.number().int().min(0).default(0),
  /** Wait between batches, to watch the new release under traffic. */
  pause: duration.default(0),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  app: appSchema,
  servers: z.array(serverSchema).min(1, "needs at least one server"),
  ssh: sshSchema.default(sshSchema.parse({})),
  /** Where releases live on each server; "~/" means the SSH user's home. */
  deployPath: nonEmpty.optional(),
  keepReleases: z.number().int().min(2).default(5),
  transfer: transferSchema.default(transferSchema.parse({})),
  pm2: pm2Schema.default(pm2Schema.parse({})),
  balancer: balancerSchema,
  health: healthSchema.default(healthSchema.parse({})),
  rolling: rollingSchema.default(rollingSchema.parse({})),
});

export type ParsedConfig = z.output<typeof configSchema>;
