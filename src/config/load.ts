import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type * as z from "zod";
import { BALANCER_DRIVERS, type BalancerConfig, driverFor } from "../balancer/drivers.js";
import { ConfigError, describeIssues, formatPath } from "./errors.js";
import { parseConfigText, withPositions } from "./positions.js";
import { configSchema, type ParsedConfig } from "./schema.js";

export const DEFAULT_CONFIG_FILE = "deploy.config.json";

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
  /** Whether port and user were set in the nexus config (they win over ~/.ssh/config). */
  explicit?: { port: boolean; user: boolean };
}

export type { BalancerConfig } from "../balancer/drivers.js";

export interface Config {
  file: string;
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

export type NotifyConfig = Omit<ParsedConfig["notify"][number], "url"> & { url: string };

export function expandHome(p: string): string {
  if (p === "~") return os.homedir();
  if (p.startsWith("~/")) return path.join(os.homedir(), p.slice(2));
  return p;
}

function localPath(base: string, p: string): string {
  return path.resolve(base, expandHome(p));
}

/** Reads, validates and resolves a config file. Throws ConfigError with every problem found. */
export function loadConfig(file: string = DEFAULT_CONFIG_FILE, env: NodeJS.ProcessEnv = process.env): Config {
  const absolute = path.resolve(file);
  // Relative to here when inside it; else as given in full (not "../../../etc/x.json").
  const relative = path.relative(process.cwd(), absolute);
  const label = relative && !relative.startsWith("..") ? relative : absolute;
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(label, [
      code === "ENOENT"
        ? "file not found (create one with `nexus init`, or pass -c/--config PATH)"
        : `cannot read the file (${code ?? String(error)})`,
    ]);
  }
  const parsed = parseConfigText(text, label);
  try {
    return resolveConfig(parsed.data, label, path.dirname(absolute), env);
  } catch (error) {
    throw error instanceof ConfigError ? withPositions(error, parsed) : error;
  }
}

type EnvValue = ParsedConfig["pm2"]["env"][string];

/**
 * Resolves `{"fromEnv": "NAME"}` values from nexus's environment. A variable that is unset or
 * empty (CI systems pass a missing secret as "") is a problem naming the field and the variable.
 */
function resolveEnv(
  values: Record<string, EnvValue>,
  at: PropertyKey[],
  env: NodeJS.ProcessEnv,
  problems: string[],
): { env: Record<string, string>; sources: Record<string, string> } {
  const out: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (typeof value === "string") {
      out[key] = value;
      continue;
    }
    const found = env[value.fromEnv];
    if (found === undefined || found === "") {
      problems.push(
        `${formatPath([...at, key])}: the environment variable ${value.fromEnv} is ${found === undefined ? "not set" : "empty"} (it holds this value: set it where nexus runs, such as a CI secret)`,
      );
      continue;
    }
    out[key] = found;
    sources[key] = value.fromEnv;
  }
  return { env: out, sources };
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
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      label,
      describeIssues(
        result.error.issues.flatMap((issue) => unwrapUnion(issue, data)),
        (p) => balancerKeysAt(p, data) ?? keysAt(configSchema, p),
      ),
    );
  }
  const parsed = result.data;
  const problems: string[] = [];
  const servers = resolveServers(parsed, data, env, problems);
  const names = new Set(servers.map((s) => s.name));
  problems.push(...loginProblems(parsed, servers));
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
  if (problems.length > 0) throw new ConfigError(label, [...new Set(problems)]);

  return {
    file: label,
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
  parsed: ParsedConfig,
  data: unknown,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ServerConfig[] {
  const names = new Set<string>();
  const upstreams = new Map<string, string>();
  const defaultUser = parsed.ssh.user ?? os.userInfo().username;
  const rawServers = (data as { servers?: { port?: unknown }[] }).servers;
  const common = resolveEnv(parsed.pm2.env, ["pm2", "env"], env, problems);
  return parsed.servers.map((server, index): ServerConfig => {
    if (names.has(server.name)) problems.push(`servers[${index}].name: "${server.name}" is used twice`);
    names.add(server.name);
    const upstream = server.upstream ?? `${server.host}:${parsed.app.port}`;
    const other = upstreams.get(upstream);
    if (other) problems.push(`servers[${index}].upstream: "${upstream}" is also the upstream of "${other}"`);
    upstreams.set(upstream, server.name);
    const own = resolveEnv(server.env, ["servers", index, "env"], env, problems);
    const sources = { ...common.sources, ...own.sources };
    for (const key of Object.keys(server.env)) if (!(key in own.sources)) delete sources[key];
    return {
      name: server.name,
      host: server.host,
      port: server.port,
      user: server.user ?? defaultUser,
      deployPath: stripTrailingSlash(server.deployPath ?? parsed.deployPath ?? `~/apps/${parsed.app.name}`),
      upstream,
      surgeUpstream: withPort(upstream, parsed.app.surgePort ?? parsed.app.port + 1),
      env: { ...common.env, ...own.env },
      secretKeys: Object.keys(sources),
      envSources: sources,
      explicit: {
        port: rawServers?.[index]?.port !== undefined,
        user: (server.user ?? parsed.ssh.user) !== undefined,
      },
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
function loginProblems(parsed: ParsedConfig, servers: readonly ServerConfig[]): string[] {
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
    const { env: resolved } = resolveEnv({ url: entry.url }, ["notify", index], env, problems);
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
 * `balancer` is an object or a list, so zod reports a mistake in it as a union of both readings.
 * Keep the reading that matches the input's shape, so the message names the field that is wrong.
 */
function unwrapUnion(issue: z.core.$ZodIssue, data: unknown): z.core.$ZodIssue[] {
  if (issue.code !== "invalid_union" || issue.path[0] !== "balancer") return [issue];
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
