// A namespace import (here and wherever zod is imported): esbuild then keeps only the parts of zod the CLI
// uses; `import { z }` would keep all of it, locales included (0.56 MB of the bundle, ~25 ms of start-up).
import * as z from "zod";
import { PM2_OPTIONS } from "../process/pm2/ecosystem.js";
import { duration, parseDuration } from "./duration.js";

const nonEmpty = z.string().min(1, "must not be empty");
const port = z.number().int().min(1).max(65535);
/** An env value: the text itself, or `{"fromEnv": "NAME"}` to read it from nexus's own environment (CI secrets). */
const envValue = z.union([
  z.string(),
  z.strictObject({
    fromEnv: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name"),
  }),
]);
const envMap = z.record(z.string(), envValue);

/** A path inside the release, kept in <deployPath>/shared/: relative, no "..", no "." or empty parts. */
const sharedPath = nonEmpty
  .refine((p) => !p.startsWith("/") && !p.startsWith("~"), "must be relative to the release, not absolute")
  .refine(
    (p) =>
      p.startsWith("/") ||
      p
        .replace(/\/+$/, "")
        .split("/")
        .every((part) => part !== "" && part !== "." && part !== ".."),
    'must not contain "..", "." or empty parts',
  )
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), "must not contain control characters")
  .transform((p) => p.replace(/\/+$/, ""));

/**
 * Why PM2 would read this process name as something else, or undefined when it is a plain name:
 * `pm2 delete all` removes every app, a name JS reads as a number (`12`, `1e3`, `0x1f`) is a pm
 * id, a leading "-" is an option, `/…/` a regex, and a name containing ".json", ".yml", ".yaml"
 * or ".config.js" a process file.
 */
export function pm2NameProblem(name: string): string | undefined {
  if (name === "all") return '"all" means every process to PM2: choose another name';
  if (name.trim() !== "" && !Number.isNaN(Number(name)))
    return `"${name}" reads as a PM2 process id: use a name with a letter in it`;
  if (name.startsWith("-")) return `"${name}" would be read as an option: it must not start with "-"`;
  if (name.startsWith("/") && name.endsWith("/")) return `"${name}" would be read as a regex by PM2`;
  const fileLike = [".json", ".yml", ".yaml", ".config.js", ".config.cjs", ".config.mjs"].find((ext) =>
    name.includes(ext),
  );
  if (fileLike) return `"${name}" contains "${fileLike}": PM2 would read it as a process file`;
  return undefined;
}

const pm2Name = (schema: z.ZodString) =>
  schema.superRefine((name, ctx) => {
    const problem = pm2NameProblem(name);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

export const appSchema = z.strictObject({
  /** Directory of the app to ship, relative to the config file. */
  root: nonEmpty.default("."),
  /** PM2 process name and the name used in default paths. */
  name: pm2Name(nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-'")),
  /** Entry script, relative to the app root. */
  start: nonEmpty.default("server.js"),
  /** Port the app listens on (the upstream and health port unless overridden). */
  port: port.default(3000),
  /**
   * Extra exclude patterns for the artifact (gitignore syntax), on top of the app's .gitignore and
   * .nexusignore files; node_modules, .git, logs, *.log, .env* and .npmrc are always left out.
   */
  exclude: z.array(nonEmpty).default([]),
  /** Patterns (gitignore syntax) shipped even when excluded, e.g. ".env.production"; never node_modules or .git. */
  include: z.array(nonEmpty).default([]),
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
  name: pm2Name(nonEmpty).optional(),
  env: envMap.default({}),
  /** Instances per server: a number, or "max" (one per CPU). */
  instances: z.union([z.number().int().min(1), z.literal("max")]).default(1),
  /** "cluster" runs the instances behind Node's cluster module, sharing the port. */
  execMode: z.enum(["fork", "cluster"]).default("fork"),
  /** Other ecosystem keys passed to PM2 as they are (an allow-list: nexus sets the rest). */
  options: PM2_OPTIONS.default({}),
  /** How long PM2 waits for the app to exit after SIGINT before it kills it. */
  killTimeout: duration.default(10_000),
});

export const balancerSchema = z.strictObject({
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

/** A name HAProxy accepts for a backend or server (and that needs no quoting in a runtime API command). */
const haproxyName = nonEmpty.regex(/^[A-Za-z0-9_.:-]+$/, "use letters, digits, '_', '.', ':' or '-'");

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

/** One load balancer, by `type` ("nginx" when left out). */
export const balancerEntrySchema = z.discriminatedUnion("type", [balancerSchema, haproxyBalancerSchema]);

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

const watchDuration = z.union([z.number(), z.string()]);
const watchObjectSchema = z.strictObject({
  /** How long each batch is watched once back in rotation (0: off). */
  duration: watchDuration,
  /** The highest failure ratio a watched server may show (0.01: 1%). */
  maxFailureRatio: z.number().min(0).max(1).default(0.01),
  /** How many times the untouched servers' rate over the same seconds it may reach. */
  maxRatioToUntouched: z.number().min(1).default(2),
  /** The fewest requests a server must have served to be judged (below: the window is extended once). */
  minRequests: z.number().int().min(1).default(50),
  /**
   * When the balancer's traffic cannot be read for a whole window (the batch cannot be judged):
   * "needs-human" stops the deploy there, the batch left on its new release in rotation (exit 3);
   * "wait" goes on trying until it can read, then watches a whole window. Never a rollback.
   */
  onBlind: z.enum(["needs-human", "wait"]).default("needs-human"),
});
const WATCH_SHAPE =
  'a duration such as "30s" (0: off), or an object with duration, maxFailureRatio, maxRatioToUntouched, minRequests, onBlind';
/** `rolling.watch`: a duration, or an object with thresholds; always yields the object. */
export const watchSchema = z
  .union([watchDuration, watchObjectSchema], { error: () => `expected ${WATCH_SHAPE}` })
  .transform((value, ctx) => {
    const object = typeof value === "object" ? value : watchObjectSchema.parse({ duration: value });
    const ms = parseDuration(object.duration);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        path: typeof value === "object" ? ["duration"] : [],
        input: object.duration,
        message: `expected a duration such as "30s" (0: off), received ${JSON.stringify(object.duration)}`,
      });
      return z.NEVER;
    }
    return { ...object, duration: ms };
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
  /** After each batch is back in rotation, watch its error rate at the balancer; roll back on a rise. */
  watch: watchSchema.prefault(0),
});

export const sharedSchema = z.strictObject({
  /** Files in <deployPath>/shared/ linked into each release (".env", "config/production.json"); they must exist. */
  files: z.array(sharedPath).default([]),
  /** Directories in <deployPath>/shared/ linked into each release ("uploads"); created when missing. */
  dirs: z.array(sharedPath).default([]),
});

export const hooksSchema = z.strictObject({
  /** Shell command run once, on one server, in the new release after staging and before the first drain. */
  beforeRoll: nonEmpty.optional(),
  /** The server beforeRoll runs on (default: the first server deployed). */
  beforeRollOn: nonEmpty.optional(),
  /** Shell command run on each server after the restart, before the gate; a failure fails the gate. */
  afterStart: nonEmpty.optional(),
  /** Local shell command run after a successful deploy (NEXUS_RELEASE, NEXUS_RESULT, NEXUS_SUMMARY). */
  afterDeploy: nonEmpty.optional(),
  /** Local shell command run after a deploy that did not succeed. */
  afterFailure: nonEmpty.optional(),
  /** How long a hook may run before it is stopped (and counted as failed). */
  timeout: duration.default(300_000),
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
  /** One balancer, or several (an HA pair): a server is drained on all before it is touched. */
  balancer: z.union([
    balancerEntrySchema,
    z.array(balancerEntrySchema).min(1, "needs at least one balancer"),
  ]),
  shared: sharedSchema.default(sharedSchema.parse({})),
  hooks: hooksSchema.default(hooksSchema.parse({})),
  health: healthSchema.default(healthSchema.parse({})),
  rolling: rollingSchema.default(rollingSchema.parse({})),
});

export type ParsedConfig = z.output<typeof configSchema>;
