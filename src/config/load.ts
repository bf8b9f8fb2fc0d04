import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type * as z from "zod";
import { BALANCER_DRIVERS, type BalancerConfig, driverFor } from "../balancer/drivers.js";
import { UsageError } from "../errors.js";
import { parseProxyJump } from "../ssh/proxy-jump.js";
import { ConfigError, describeIssues, formatPath } from "./errors.js";
import { inventoryRedactor, runInventory } from "./inventory.js";
import { DEFAULT_CONFIG_FILE, STDIN_LABEL } from "./invocation.js";
import { destinationFile, destinationProblem, isPlainObject, mergeLayers } from "./layers.js";
import { type ParsedLayer, parseConfigText, withPositions } from "./positions.js";
import { configSchema, inventorySchema, type ParsedConfig } from "./schema.js";

export { DEFAULT_CONFIG_FILE, STDIN_LABEL };

function proxyJumpProblems(value: string, field: string): string[] {
  try {
    parseProxyJump(value, field);
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

/** ssh.proxyJump and each server's, each a chain ssh's ProxyJump would take. */
function jumpProblems(parsed: ResolvedParsed): string[] {
  const problems: string[] = [];
  if (parsed.ssh.proxyJump !== undefined)
    problems.push(...proxyJumpProblems(parsed.ssh.proxyJump, "ssh.proxyJump"));
  for (const [index, server] of parsed.servers.entries())
    if (server.proxyJump !== undefined)
      problems.push(...proxyJumpProblems(server.proxyJump, `servers[${index}].proxyJump`));
  return problems;
}

export interface ServerConfig {
  name: string;
  host: string;
  port: number;
  user: string;
  /** Absolute, or starting with "~/" for the SSH user's home (resolved once connected). */
  deployPath: string;
  /** Address of this server in the upstream file ("10.0.0.2:3000"). */
  upstream: string;
  /**
   * The same address on app.surgePort ("10.0.0.2:3001"): where the surge strategy moves the
   * server's balancer entry every other deploy. Balancers find the entry at either address.
   */
  surgeUpstream?: string;
  /** pm2.env merged with the server's env, `fromEnv` values resolved. Values are secrets: never print them. */
  env: Record<string, string>;
  /** The env keys whose values came from nexus's environment (`{"fromEnv": …}`): always masked. */
  secretKeys?: string[];
  /** Where each `fromEnv` value came from: key → variable name (for `nexus config`). */
  envSources?: Record<string, string>;
  /**
   * `fromEnv` values whose variable is not set where nexus runs: left out of `env`. Only the
   * commands that write the app's environment need them (`requireSecrets`); the others run without.
   */
  missingSecrets?: MissingSecret[];
  /** Whether port and user were set in the nexus config (they win over ~/.ssh/config). */
  explicit?: { port: boolean; user: boolean };
  /** Jump hosts from the nexus config (the server's, else ssh.proxyJump), as written: wins over ~/.ssh/config. */
  proxyJump?: string;
}

/** A `{"fromEnv": …}` value whose variable is unset or empty where nexus runs. */
export interface MissingSecret {
  /** The env key. */
  key: string;
  /** The field that reads it, for messages: "pm2.env.API_TOKEN", 'servers[1].env["API-KEY"]'. */
  field: string;
  variable: string;
  empty: boolean;
}

export type { BalancerConfig } from "../balancer/drivers.js";

export interface Config {
  /** The base config file as the user named it (relative to the cwd when inside it); "(stdin)" for `-c -`. */
  file: string;
  /** The destination (`-d staging`) whose overlay was read on top of the base, if any. */
  destination?: string;
  /** Every file read, base first (the base, then `deploy.<destination>.json`). */
  files: string[];
  /** The command that printed the servers (`servers.fromCommand`), if any. */
  inventory?: string;
  app: Omit<ParsedConfig["app"], "root" | "surgePort"> & { root: string; surgePort: number };
  servers: ServerConfig[];
  ssh: ParsedConfig["ssh"] & { knownHosts: string; privateKey?: string; configFile: string };
  transfer: ParsedConfig["transfer"];
  /** Which process manager runs the app (`process.type`); its settings are the section of that name. */
  process: ParsedConfig["process"];
  pm2: Omit<ParsedConfig["pm2"], "env" | "name"> & { name: string };
  shared: ParsedConfig["shared"];
  hooks: ParsedConfig["hooks"];
  /** The first balancer (its drainTimeout: the longest of all), for code that needs one host. */
  balancer: BalancerConfig;
  /** Every balancer: a server leaves and rejoins rotation on all of them. */
  balancers: BalancerConfig[];
  health: Omit<ParsedConfig["health"], "port"> & { port: number };
  rolling: ParsedConfig["rolling"];
  keepReleases: number;
  /** Webhooks, their URLs resolved (`fromEnv` read): secrets, never printed. */
  notify: NotifyConfig[];
}

export type NotifyConfig = Omit<ParsedConfig["notify"][number], "url"> & {
  /** "" when `missing`. */
  url: string;
  /** Its `fromEnv` variable is not set where nexus runs: never sent, and said when it would be. */
  missing?: MissingSecret;
};

export function expandHome(p: string): string {
  if (p === "~") return os.homedir();
  if (p.startsWith("~/")) return path.join(os.homedir(), p.slice(2));
  return p;
}

function localPath(base: string, p: string): string {
  return path.resolve(base, expandHome(p));
}

export interface LoadOptions {
  /** `-d NAME`: read `deploy.NAME.json` from the base config's directory on top of the base. */
  destination?: string;
  /** The text of `-c -` (the CLI reads standard input). */
  readStdin?: () => string;
}

/** Where the layers of the last config loaded came from, for placing errors found after loading. */
const layersOf = new WeakMap<Config, ParsedLayer[]>();

/** The files (parsed) a config was read from, base first. */
export function configLayers(config: Config): ParsedLayer[] {
  return layersOf.get(config) ?? [];
}

/** `file` as errors name it: relative to here when inside it; else as given in full (not "../../../etc/x.json"). */
function labelOf(absolute: string): string {
  const relative = path.relative(process.cwd(), absolute);
  return relative && !relative.startsWith("..") ? relative : absolute;
}

function readLayer(absolute: string, label: string, read: () => string): ParsedLayer {
  let text: string;
  try {
    text = read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(label, [
      code === "ENOENT"
        ? absolute === "-"
          ? "no config on standard input"
          : "file not found (create one with `nexus init`, or pass -c/--config PATH)"
        : `cannot read the file (${code ?? String(error)})`,
    ]);
  }
  return { ...parseConfigText(text, label), label };
}

/**
 * Reads, validates and resolves a config file ("-": standard input, its paths relative to the
 * current directory), with a destination's overlay on top. Throws ConfigError with every problem
 * found, each placed in the file it is in.
 */
export function loadConfig(
  file: string = DEFAULT_CONFIG_FILE,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): Config {
  const fromStdin = file === "-";
  const absolute = fromStdin ? "-" : path.resolve(file);
  const label = fromStdin ? STDIN_LABEL : labelOf(absolute);
  const baseDir = fromStdin ? process.cwd() : path.dirname(absolute);
  const layers = [
    readLayer(absolute, label, () =>
      fromStdin ? (options.readStdin ?? readStdin)() : readFileSync(absolute, "utf8"),
    ),
  ];
  const { destination } = options;
  if (destination !== undefined) {
    const problem = destinationProblem(destination);
    if (problem) throw new UsageError(`-d/--destination (or NEXUS_DESTINATION): ${problem}`);
    const overlay = destinationFile(baseDir, destination);
    const overlayLabel = labelOf(overlay);
    const layer = readLayer(overlay, overlayLabel, () => readFileSync(overlay, "utf8"));
    if (!isPlainObject(layer.data))
      throw new ConfigError(
        overlayLabel,
        [`(top level): expected an object, received ${typeof layer.data}`],
        [{ line: 1, column: 1 }],
      );
    layers.push(layer);
  }
  const data = layers.map((l) => l.data).reduce(mergeLayers);
  try {
    const config = resolveConfig(data, label, baseDir, env);
    config.destination = destination;
    config.files = layers.map((l) => l.label);
    layersOf.set(config, layers);
    return config;
  } catch (error) {
    throw error instanceof ConfigError ? withPositions(error, layers) : error;
  }
}

function readStdin(): string {
  if (process.stdin.isTTY)
    throw new ConfigError(STDIN_LABEL, ["-c -: standard input is a terminal; pipe the config in"]);
  return readFileSync(0, "utf8");
}

/**
 * `servers: {"fromCommand": …}` replaced by what the command prints; every problem with that list
 * says where it came from. The command runs in `baseDir`.
 */
function expandInventory(
  data: unknown,
  label: string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): { data: unknown; command?: string } {
  if (!isPlainObject(data) || !isPlainObject(data.servers)) return { data };
  const source = inventorySchema.safeParse(data.servers, { reportInput: true });
  if (!source.success) {
    const issues = source.error.issues.map((issue) => ({ ...issue, path: ["servers", ...issue.path] }));
    throw new ConfigError(
      label,
      describeIssues(issues, (p) => keysAt(configSchema, p)),
    );
  }
  const command = source.data.fromCommand;
  const result = runInventory(source.data, baseDir, env, inventoryRedactor(data, env));
  if ("problem" in result)
    throw new ConfigError(label, [`servers.fromCommand: \`${command}\`: ${result.problem}`]);
  return { data: { ...data, servers: result.servers }, command };
}

/** A problem with a server of an inventory says which command printed it. */
function fromInventory(problems: string[], command: string | undefined): string[] {
  if (command === undefined) return problems;
  return problems.map((p) => (/^servers\[\d+\]/.test(p) ? `${p} (a server printed by \`${command}\`)` : p));
}

type EnvValue = ParsedConfig["pm2"]["env"][string];
/** A server entry as the schema made it (an inventory has been replaced by its list by then). */
type ParsedServer = Extract<ParsedConfig["servers"], unknown[]>[number];
type ResolvedParsed = ParsedConfig & { servers: ParsedServer[] };

/**
 * Resolves `{"fromEnv": "NAME"}` values from nexus's environment. A variable that is unset or
 * empty (CI systems pass a missing secret as "") is not an error here: it is recorded as missing,
 * and only the commands that write the app's environment refuse it (`requireSecrets`), so that
 * `status`, `drain` or `check` at night need no deploy-time secret.
 */
function resolveEnv(
  values: Record<string, EnvValue>,
  at: PropertyKey[],
  env: NodeJS.ProcessEnv,
): { env: Record<string, string>; sources: Record<string, string>; missing: MissingSecret[] } {
  const out: Record<string, string> = {};
  const sources: Record<string, string> = {};
  const missing: MissingSecret[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (typeof value === "string") {
      out[key] = value;
      continue;
    }
    const found = env[value.fromEnv];
    if (found === undefined || found === "") {
      missing.push({
        key,
        field: formatPath([...at, key]),
        variable: value.fromEnv,
        empty: found !== undefined,
      });
      continue;
    }
    out[key] = found;
    sources[key] = value.fromEnv;
  }
  return { env: out, sources, missing };
}

/**
 * For the commands that write the app's environment (deploy, restart, exec, and a rollback or
 * recover that runs hooks.afterStart): every `fromEnv` variable of these servers (all when not
 * given) must be set. A config error (exit 2) names each field and variable otherwise.
 */
export function requireSecrets(config: Config, why: string, servers?: readonly string[]): void {
  const problems = new Set<string>();
  for (const server of config.servers) {
    if (servers && !servers.includes(server.name)) continue;
    for (const m of server.missingSecrets ?? [])
      problems.add(
        `${m.field}: the environment variable ${m.variable} is ${m.empty ? "empty" : "not set"} (${why}: set it where nexus runs, such as a CI secret)`,
      );
  }
  if (problems.size > 0) throw new ConfigError(config.file, [...problems]);
}

/** Two shared paths where one is inside the other cannot both be linked. */
function sharedProblems(shared: ParsedConfig["shared"]): string[] {
  const all = [
    ...shared.files.map((p, i) => ({ p, field: `shared.files[${i}]` })),
    ...shared.dirs.map((p, i) => ({ p, field: `shared.dirs[${i}]` })),
  ];
  const problems: string[] = [];
  for (const [i, a] of all.entries()) {
    for (const b of all.slice(i + 1)) {
      if (a.p === b.p) problems.push(`${b.field}: "${b.p}" is also ${a.field}`);
      else if (b.p.startsWith(`${a.p}/`) || a.p.startsWith(`${b.p}/`))
        problems.push(`${b.field}: "${b.p}" and ${a.field} "${a.p}" are nested: share the outer one only`);
    }
  }
  return problems;
}

/** Validates parsed JSON. `baseDir` anchors relative local paths (the config file's directory). */
export function resolveConfig(
  data: unknown,
  label: string,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const inventory = expandInventory(data, label, baseDir, env);
  data = inventory.data;
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      label,
      fromInventory(
        describeIssues(
          result.error.issues.flatMap((issue) => unwrapUnion(issue, data)),
          (p) => balancerKeysAt(p, data) ?? keysAt(configSchema, p),
        ),
        inventory.command,
      ),
    );
  }
  const parsed = result.data as ResolvedParsed;
  const problems: string[] = [];
  const servers = resolveServers(parsed, data, env, problems);
  const names = new Set(servers.map((s) => s.name));
  problems.push(...loginProblems(parsed, servers));
  problems.push(...jumpProblems(parsed));
  problems.push(...sharedProblems(parsed.shared));
  problems.push(...surgeProblems(parsed));
  if (parsed.hooks.beforeRollOn !== undefined && !names.has(parsed.hooks.beforeRollOn)) {
    problems.push(
      `hooks.beforeRollOn: "${parsed.hooks.beforeRollOn}" is not a server name (expected one of ${[...names].map((n) => `"${n}"`).join(", ")})`,
    );
  }
  // Each entry as its driver's schema made it.
  const entries = (Array.isArray(parsed.balancer) ? parsed.balancer : [parsed.balancer]) as BalancerConfig[];
  const balancers = entries;
  problems.push(...balancerProblems(balancers, Array.isArray(parsed.balancer), names));
  const notify = resolveNotify(parsed.notify, env, problems);
  if (problems.length > 0)
    throw new ConfigError(label, fromInventory([...new Set(problems)], inventory.command));

  return {
    file: label,
    files: [label],
    ...(inventory.command !== undefined ? { inventory: inventory.command } : {}),
    app: {
      ...parsed.app,
      root: path.resolve(baseDir, parsed.app.root),
      surgePort: parsed.app.surgePort ?? parsed.app.port + 1,
    },
    servers,
    ssh: {
      ...parsed.ssh,
      knownHosts: localPath(baseDir, parsed.ssh.knownHosts),
      privateKey: parsed.ssh.privateKey ? localPath(baseDir, parsed.ssh.privateKey) : undefined,
      configFile: localPath(baseDir, parsed.ssh.configFile),
    },
    transfer: parsed.transfer,
    process: parsed.process,
    pm2: {
      name: parsed.pm2.name ?? parsed.app.name,
      killTimeout: parsed.pm2.killTimeout,
      instances: parsed.pm2.instances,
      execMode: parsed.pm2.execMode,
      options: parsed.pm2.options,
    },
    shared: parsed.shared,
    hooks: parsed.hooks,
    balancer: {
      ...(balancers[0] as BalancerConfig),
      drainTimeout: Math.max(...balancers.map((b) => b.drainTimeout)),
    },
    balancers,
    health: { ...parsed.health, port: parsed.health.port ?? parsed.app.port },
    rolling: parsed.rolling,
    keepReleases: parsed.keepReleases,
    notify,
  };
}

/**
 * Each server with its defaults filled (user, deploy path, upstream) and its env resolved
 * (pm2.env, then its own; `fromEnv` read): names and upstreams used twice are problems.
 */
function resolveServers(
  parsed: ResolvedParsed,
  data: unknown,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ServerConfig[] {
  const names = new Set<string>();
  const upstreams = new Map<string, string>();
  const defaultUser = parsed.ssh.user ?? os.userInfo().username;
  const rawServers = (data as { servers?: { port?: unknown }[] }).servers;
  const common = resolveEnv(parsed.pm2.env, ["pm2", "env"], env);
  return parsed.servers.map((server, index): ServerConfig => {
    if (names.has(server.name)) problems.push(`servers[${index}].name: "${server.name}" is used twice`);
    names.add(server.name);
    const upstream = server.upstream ?? `${server.host}:${parsed.app.port}`;
    const other = upstreams.get(upstream);
    if (other) problems.push(`servers[${index}].upstream: "${upstream}" is also the upstream of "${other}"`);
    upstreams.set(upstream, server.name);
    const own = resolveEnv(server.env, ["servers", index, "env"], env);
    const sources = { ...common.sources, ...own.sources };
    for (const key of Object.keys(server.env)) if (!(key in own.sources)) delete sources[key];
    // A server's own value (set or missing) replaces the common one of that key.
    const missing = [...common.missing.filter((m) => !(m.key in server.env)), ...own.missing];
    const merged = { ...common.env, ...own.env };
    for (const m of own.missing) delete merged[m.key];
    return {
      name: server.name,
      host: server.host,
      port: server.port,
      user: server.user ?? defaultUser,
      deployPath: stripTrailingSlash(server.deployPath ?? parsed.deployPath ?? `~/apps/${parsed.app.name}`),
      upstream,
      surgeUpstream: withPort(upstream, parsed.app.surgePort ?? parsed.app.port + 1),
      env: merged,
      secretKeys: Object.keys(sources),
      envSources: sources,
      ...(missing.length > 0 ? { missingSecrets: missing } : {}),
      explicit: {
        port: rawServers?.[index]?.port !== undefined,
        user: (server.user ?? parsed.ssh.user) !== undefined,
      },
      ...((server.proxyJump ?? parsed.ssh.proxyJump) !== undefined
        ? { proxyJump: server.proxyJump ?? parsed.ssh.proxyJump }
        : {}),
    };
  });
}

/** The surge strategy's two ports must differ, and its gate probes the app's own port. */
function surgeProblems(parsed: ParsedConfig): string[] {
  const surgePort = parsed.app.surgePort ?? parsed.app.port + 1;
  const problems: string[] = [];
  if (surgePort === parsed.app.port)
    problems.push(`app.surgePort: ${surgePort} is app.port too (the surge strategy needs a second port)`);
  if (surgePort > 65535) problems.push(`app.surgePort: app.port + 1 is not a port: set app.surgePort`);
  if (
    parsed.rolling.strategy === "surge" &&
    parsed.health.port !== undefined &&
    parsed.health.port !== parsed.app.port
  )
    problems.push(
      `health.port: the surge strategy probes each process on its own port (app.port or app.surgePort); leave health.port out`,
    );
  return problems;
}

/** "host:port" (or "[v6]:port") with another port. */
export function withPort(address: string, port: number): string {
  return `${address.replace(/:\d+$/, "")}:${port}`;
}

/** Two entries with one login, and deploy paths that are neither absolute nor under ~/. */
function loginProblems(parsed: ResolvedParsed, servers: readonly ServerConfig[]): string[] {
  const problems: string[] = [];
  const logins = new Map<string, string>();
  for (const [index, server] of servers.entries()) {
    // One login, one PM2 daemon: both entries' apps would carry one PM2 name, and each restart
    // (which deletes that name's instances) would take down the other's.
    const login = `${server.user}@${server.host}:${server.port}`;
    const twin = logins.get(login);
    if (twin !== undefined)
      problems.push(
        `servers[${index}]: "${server.name}" logs in as ${login}, as "${twin}" does: one PM2 would run both as "${parsed.pm2.name ?? parsed.app.name}", each restart replacing the other's; use one entry per machine and login`,
      );
    logins.set(login, server.name);
    if (!server.deployPath.startsWith("/") && !server.deployPath.startsWith("~/")) {
      const field = parsed.servers[index]?.deployPath ? `servers[${index}].deployPath` : "deployPath";
      problems.push(`${field}: must be absolute or start with "~/", received "${server.deployPath}"`);
    }
  }
  return problems;
}

/** Each webhook's URL read (from the environment for `fromEnv`) and checked, never quoted in a problem. */
function resolveNotify(
  entries: ParsedConfig["notify"],
  env: NodeJS.ProcessEnv,
  problems: string[],
): NotifyConfig[] {
  return entries.flatMap((entry, index) => {
    const { env: resolved, missing } = resolveEnv({ url: entry.url }, ["notify", index], env);
    // Not an error: a command that would notify says so instead (read-only commands need no secret).
    if (missing[0]) return [{ ...entry, url: "", missing: missing[0] }];
    const url = resolved.url;
    if (url === undefined) return [];
    let protocol: string | undefined;
    try {
      protocol = new URL(url).protocol;
    } catch {}
    if (protocol !== "http:" && protocol !== "https:") {
      problems.push(
        `notify[${index}].url: expected an http(s) URL${typeof entry.url === "string" ? "" : ` in ${entry.url.fromEnv}`}`,
      );
      return [];
    }
    return [{ ...entry, url }];
  });
}

function balancerProblems(
  balancers: readonly BalancerConfig[],
  isList: boolean,
  names: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  balancers.forEach((balancer, index) => {
    const at = isList ? `balancer[${index}]` : "balancer";
    if (balancer.host !== "local" && !names.has(balancer.host)) {
      problems.push(
        `${at}.host: "${balancer.host}" is not a server name (expected one of ${[...names].map((n) => `"${n}"`).join(", ")} or "local")`,
      );
    }
    const driver = driverFor(balancer);
    const identity = `${balancer.type} ${driver.identity(balancer)}`;
    const twin = seen.get(identity);
    if (twin !== undefined) problems.push(`${at}: is the same balancer as balancer[${twin}]`);
    seen.set(identity, index);
    problems.push(...(driver.problems?.(balancer, at, names) ?? []));
  });
  return problems;
}

/**
 * `balancer` is an object or a list (and `servers` a list or an inventory), so zod reports a
 * mistake in it as a union of both readings. Keep the reading that matches the input's shape, so
 * the message names the field that is wrong; a field left out reads as the first (a list of servers).
 */
function unwrapUnion(issue: z.core.$ZodIssue, data: unknown): z.core.$ZodIssue[] {
  if (issue.code !== "invalid_union" || (issue.path[0] !== "balancer" && issue.path[0] !== "servers"))
    return [issue];
  if (issue.path.length === 1 && valueAt(data, issue.path) === undefined) {
    const first = issue.errors[0]?.[0];
    return first ? [{ ...first, path: issue.path } as z.core.$ZodIssue] : [issue];
  }
  if ((issue as { note?: string }).note === "No matching discriminator") {
    const discriminator = (issue as { discriminator?: string }).discriminator ?? "type";
    const path = issue.path.at(-1) === discriminator ? issue.path : [...issue.path, discriminator];
    return [
      {
        code: "invalid_value",
        values: BALANCER_DRIVERS.map((driver) => driver.type),
        path,
        message: issue.message,
        input: valueAt(data, path),
      } as z.core.$ZodIssue,
    ];
  }
  const readings = issue.errors.filter(
    (errors) => !(errors.length === 1 && errors[0]?.code === "invalid_type" && errors[0].path.length === 0),
  );
  if (readings.length !== 1) return [issue];
  return (readings[0] ?? []).flatMap((inner) =>
    unwrapUnion({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue, data),
  );
}

/** The keys of the balancer type written at `at` (balancer or balancer[i]), for "did you mean". */
function balancerKeysAt(at: readonly PropertyKey[], data: unknown): string[] | undefined {
  if (at[0] !== "balancer" || at.length > 2 || (at.length === 2 && typeof at[1] !== "number"))
    return undefined;
  const type = (valueAt(data, at) as { type?: unknown } | undefined)?.type;
  const driver = BALANCER_DRIVERS.find((candidate) => candidate.type === type) ?? BALANCER_DRIVERS[0];
  return Object.keys(driver.schema.shape);
}

function valueAt(data: unknown, at: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of at) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  return value;
}

function stripTrailingSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

/** Keys allowed at a path of the schema, for "did you mean" suggestions. */
function keysAt(schema: z.core.$ZodType, at: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType | undefined = schema;
  const steps = [...at];
  while (current) {
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === "default" || def.type === "optional" || def.type === "pipe") {
      current = (def.innerType ?? def.in) as z.core.$ZodType;
      continue;
    }
    if (def.type === "union") {
      // Keys of every reading (one balancer or a list of them, nginx or haproxy).
      const options = def.options as z.core.$ZodType[];
      return [...new Set(options.flatMap((option) => keysAt(option, steps)))];
    }
    if (steps.length === 0) break;
    const step = steps.shift();
    if (def.type === "object") current = (def.shape as Record<string, z.core.$ZodType>)[String(step)];
    else if (def.type === "array") current = def.element as z.core.$ZodType;
    else return [];
  }
  const def = current?._zod.def as { type?: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}
