// A namespace import (here and wherever zod is imported): esbuild then keeps only the parts of zod the CLI
// uses; `import { z }` would keep all of it, locales included (0.56 MB of the bundle, ~25 ms of start-up).
import * as z from "zod";
import { BALANCER_DRIVERS } from "../balancer/drivers.js";
import { PROCESS_MANAGERS, type ProcessManagerType } from "../process/managers.js";
import { ROLLOUT_STRATEGIES, type RolloutStrategyName } from "../rollout/strategies.js";
import { parseDuration } from "./duration.js";
import { duration, envMap, envValue, nonEmpty, port } from "./fields.js";

/** A relative path inside `base`: no "..", no "." or empty parts, no control characters; a trailing "/" dropped. */
const pathInside = (base: string) =>
  nonEmpty
    .refine((p) => !p.startsWith("/") && !p.startsWith("~"), `must be relative to ${base}, not absolute`)
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

/** A path inside the release, kept in <deployPath>/shared/. */
const sharedPath = pathInside("the release");

/** app.workspace: a package directory inside app.root. */
const workspacePath = pathInside("app.root");

/** app.name is the default process name: a name the process managers would read as something else is refused. */
const processName = nonEmpty.superRefine((name, ctx) => {
  for (const manager of PROCESS_MANAGERS) {
    const problem = manager.nameProblem?.(name);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }
});

export const appSchema = z.strictObject({
  /** Directory of the app to ship, relative to the config file. */
  root: nonEmpty.default("."),
  /** PM2 process name and the name used in default paths. */
  name: processName.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-'"),
  /**
   * What PM2 runs (src/start/): an entry file relative to the app root; "script:NAME" (or
   * "npm:NAME"), the package script NAME when it is one `node FILE ARGS` or `BIN ARGS` command;
   * "bin:BIN ARGS", a dependency's binary. Never through npm or a shell (docs/apps.md).
   */
  start: nonEmpty.default("server.js"),
  /** Port the app listens on (the upstream and health port unless overridden). */
  port: port.default(3000),
  /**
   * The second port of the surge strategy (`rolling.strategy: "surge"`): the new release starts on
   * whichever of `port` and this one is free, beside the old one. Defaults to `port` + 1.
   */
  surgePort: port.optional(),
  /**
   * Extra exclude patterns for the artifact (gitignore syntax), on top of the app's .gitignore and
   * .nexusignore files; node_modules, .git, logs, *.log, .env* and .npmrc are always left out.
   */
  exclude: z.array(nonEmpty).default([]),
  /** Patterns (gitignore syntax) shipped even when excluded, e.g. ".env.production"; never node_modules or .git. */
  include: z.array(nonEmpty).default([]),
  /** Optional local build command run in the app root before packing. */
  build: nonEmpty.optional(),
  /**
   * The package to deploy inside an npm, pnpm or Yarn workspace whose root is app.root
   * ("apps/api"): only the root's manifests, this package and the workspace packages it depends
   * on ship; the install is filtered to it; the process runs in its directory (docs/apps.md).
   */
  workspace: workspacePath.optional(),
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
  /** Jump host(s) for this server, as ssh's ProxyJump: "[user@]host[:port]", commas between hops; "none": direct. */
  proxyJump: nonEmpty.optional(),
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
  /**
   * Jump host(s) for every server (a server's own proxyJump wins), as ssh's ProxyJump:
   * "[user@]host[:port]", commas between hops; "none": direct, whatever ~/.ssh/config says.
   */
  proxyJump: nonEmpty.optional(),
  /**
   * SSH handshakes in flight at once to one address (a bastion, or servers behind one address):
   * sshd's MaxStartups (default 10:30:100) starts dropping unauthenticated connections above 10.
   */
  maxStartups: z.number().int().min(1).max(1000).default(10),
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

/** One load balancer, by `type` (the first driver's when left out). */
export const balancerEntrySchema = z.discriminatedUnion(
  "type",
  BALANCER_DRIVERS.map((driver) => driver.schema) as unknown as [z.ZodObject, ...z.ZodObject[]],
);

/** `process.type`: which process manager runs the app; its settings are the section of that name. */
export const processSchema = z.strictObject({
  type: z.enum(
    PROCESS_MANAGERS.map((manager) => manager.type) as [ProcessManagerType, ...ProcessManagerType[]],
  ),
});

type ProcessManagers = (typeof PROCESS_MANAGERS)[number];

/** Each process manager's section (`pm2`), with its defaults. */
const processSections = Object.fromEntries(
  PROCESS_MANAGERS.map((manager) => [manager.type, manager.section]),
) as { [M in ProcessManagers as M["type"]]: M["section"] };

export const healthSchema = z.strictObject({
  path: nonEmpty.regex(/^\//, "must start with '/'").default("/health"),
  /** Defaults to app.port. */
  port: port.optional(),
  /** "ssh": probe through the server's own SSH connection (private app ports); "direct": from here. */
  via: z.enum(["ssh", "direct"]).default("ssh"),
  interval: duration.default(100),
  /**
   * How long the app may take to start listening after its restart (a database connection before
   * listen): until it first answers, probes that find nothing listening count against this; the
   * deadline for the passes starts at the first answer. A crash loop fails at once.
   */
  startTimeout: duration.default(30_000),
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
  /** The first batch's window, when it should be longer (the canary's). Default: duration. */
  canary: duration.optional(),
  /** Traffic in the first seconds after a server rejoins is not judged (JIT, cold caches). */
  warmup: duration.default(0),
  /** An inconclusive window is extended, up to this long in all. Default: twice the window. */
  maxDuration: duration.optional(),
  /** What an inconclusive window ends in once it cannot be extended: pass with a warning, halt the deploy, roll the batch back. */
  inconclusive: z.enum(["pass", "halt", "rollback"]).default("pass"),
  /** The p-value below which a difference counts (one-sided tests). */
  significance: z.number().gt(0).max(0.5).default(0.001),
  /** Errors' minimum effect, absolute: how far above the reference's failure ratio a server may go (0.01: 1 point). */
  maxFailureRatio: z.number().min(0).max(1).default(0.01),
  /** Errors' minimum effect, relative: how many times the reference's failure ratio it may reach. */
  maxRatioToUntouched: z.number().min(1).default(2),
  /** Judge latency (p50, p95, p99) as well as errors, when the balancer's traffic source has response times. */
  latency: z.boolean().default(true),
  /** Latency's minimum effect, relative: how many times the reference's percentile a server may reach. */
  maxLatencyRatio: z.number().min(1).default(1.25),
  /** Latency's minimum effect, absolute: how much slower than the reference's percentile a server may be. */
  maxLatencyIncrease: duration.default(100),
  /** The fewest requests a server (and its reference) must have served to be judged (below: inconclusive). */
  minRequests: z.number().int().min(1).default(50),
  /**
   * When the balancer's traffic cannot be read for a whole window (the batch cannot be judged):
   * "needs-human" stops the deploy there, the batch left on its new release in rotation (exit 3);
   * "wait" goes on trying until it can read, then watches a whole window. Never a rollback.
   */
  onBlind: z.enum(["needs-human", "wait"]).default("needs-human"),
});
const WATCH_SHAPE =
  'a duration such as "30s" (0: off), or an object with duration, canary, warmup, maxDuration, inconclusive, significance, maxFailureRatio, maxRatioToUntouched, latency, maxLatencyRatio, maxLatencyIncrease, minRequests, onBlind';
/** `rolling.watch`: a duration, or an object with thresholds; always yields the object. */
export const watchSchema = z
  .union([watchDuration, watchObjectSchema], {
    // An object with one bad value fails both readings: name that value, not the whole shape.
    error: (issue) => {
      const input = (issue as { input?: unknown }).input;
      const inner = (issue as { errors?: { path: PropertyKey[]; message: string }[][] }).errors?.[1]?.[0];
      if (
        typeof input === "object" &&
        input !== null &&
        inner?.path.length === 1 &&
        (inner.path[0] as string) in input
      )
        return `${String(inner.path[0])}: ${inner.message.replace(/^Invalid option: /, "")}`;
      return `expected ${WATCH_SHAPE}`;
    },
  })
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
  /**
   * How each batch moves onto the new release ("drain": out of rotation, restarted, gated, back
   * in; "surge": the new release started beside the old one on app.surgePort, gated there, the
   * balancer switched to it, the old one drained and stopped).
   */
  strategy: z
    .enum(
      ROLLOUT_STRATEGIES.map((strategy) => strategy.name) as [RolloutStrategyName, ...RolloutStrategyName[]],
    )
    .default(ROLLOUT_STRATEGIES[0].name),
  /** Servers per batch: a number or a percentage of the fleet such as "25%". */
  batchSize: z
    .union([z.number().int().min(1), z.string().regex(/^\d{1,3}%$/, 'expected a percentage such as "25%"')])
    .default(1),
  onFailure: z.enum(["rollback-all", "halt"]).default("rollback-all"),
  /**
   * The failure budget: how many servers may fail their gate (or be left out by --skip-unreachable)
   * while the roll goes on, as a number or a percentage of the fleet ("5%", rounded down). A failed
   * server goes back to its previous release; onFailure applies once the budget is exceeded.
   * Left out: the first failed gate stops the roll.
   */
  maxFailed: z
    .union([z.number().int().min(0), z.string().regex(/^\d{1,3}%$/, 'expected a percentage such as "10%"')])
    .optional(),
  /** Where a server that failed within the budget is left, on its previous release: out of rotation, or back in. */
  failedServers: z.enum(["drained", "in-rotation"]).default("drained"),
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

/** Notification severities, lowest first. */
export const NOTIFY_SEVERITIES = ["info", "warning", "error", "critical"] as const;

export const notifySchema = z.strictObject({
  /** The webhook: an http(s) URL, or `{"fromEnv": "NAME"}` (a secret: never printed, masked). */
  url: envValue,
  /** "slack": Slack's incoming-webhook body (`{"text": …}`); "json": nexus's event (docs/events.md, "notify"). */
  format: z.enum(["slack", "json"]).default("json"),
  /** The lowest severity sent: info (begin, success), warning, error (failure, rollback, watch breach), critical (needs a human). */
  severity: z.enum(NOTIFY_SEVERITIES).default("info"),
  /** How long one notification may take before it is given up (with a warning). */
  timeout: duration.default(5_000),
});

/** `servers` from a local command that prints them as JSON (an inventory script, a cloud CLI and jq). */
export const inventorySchema = z.strictObject({
  /** Run under `sh -c` in the config's directory; prints a JSON array of servers (or `{"servers": [...]}`). */
  fromCommand: nonEmpty,
  /** How long the command may run. */
  timeout: duration.default(60_000),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  app: appSchema,
  /** The servers, or `{"fromCommand": …}`: a command that prints them (read before anything else is checked). */
  servers: z.union([z.array(serverSchema).min(1, "needs at least one server"), inventorySchema]),
  ssh: sshSchema.default(sshSchema.parse({})),
  /** Where releases live on each server; "~/" means the SSH user's home. */
  deployPath: nonEmpty.optional(),
  keepReleases: z.number().int().min(2).default(5),
  transfer: transferSchema.default(transferSchema.parse({})),
  process: processSchema.default({ type: PROCESS_MANAGERS[0].type }),
  ...processSections,
  /** One balancer, or several (an HA pair): a server is drained on all before it is touched. */
  balancer: z.union([
    balancerEntrySchema,
    z.array(balancerEntrySchema).min(1, "needs at least one balancer"),
  ]),
  shared: sharedSchema.default(sharedSchema.parse({})),
  hooks: hooksSchema.default(hooksSchema.parse({})),
  health: healthSchema.default(healthSchema.parse({})),
  rolling: rollingSchema.default(rollingSchema.parse({})),
  /** Webhooks told of deploy events (begin, success, failure, rollback, watch breach, needs a human). */
  notify: z.array(notifySchema).default([]),
});

export type ParsedConfig = z.output<typeof configSchema>;
