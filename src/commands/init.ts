import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError, Option } from "commander";
import type { BalancerDriver, StarterAnswers } from "../balancer/driver.js";
import { BALANCER_DRIVERS } from "../balancer/drivers.js";
import { action, type SetExit } from "../cli/action.js";
import type { GlobalOptions } from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { ConfigError } from "../config/errors.js";
import { DEFAULT_CONFIG_FILE, resolveConfig } from "../config/load.js";
import { EXIT, NexusError, UsageError } from "../errors.js";
import { parseStart } from "../start/start.js";

interface InitFlags {
  output?: string;
  name?: string;
  root: string;
  start?: string;
  port: number;
  servers?: ServerSpec[];
  user?: string;
  deployPath?: string;
  balancerHost?: string;
  /** `balancer.type`: one of the drivers'. */
  balancer?: string;
  watch?: string;
  env: string[];
  force?: boolean;
  yes?: boolean;
}

export interface ServerSpec {
  name: string;
  host: string;
  port?: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SCHEMA_FILE = "config.schema.json";

function usage(message: string): UsageError {
  return new UsageError(message);
}

/** `alpha=10.0.0.1,beta=10.0.0.2:2222,10.0.0.3`: name=host[:port]; a bare host is its own name. */
export function parseServers(value: string): ServerSpec[] {
  const specs = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item): ServerSpec => {
      const eq = item.indexOf("=");
      const name = eq >= 0 ? item.slice(0, eq).trim() : "";
      const address = (eq >= 0 ? item.slice(eq + 1) : item).trim();
      const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(address);
      if (!match) throw new InvalidArgumentError(`"${item}" is not name=host[:port]`);
      const host = (match[1] ?? match[2] ?? "").trim();
      const port = match[3] === undefined ? undefined : Number(match[3]);
      if (port !== undefined && (port < 1 || port > 65535))
        throw new InvalidArgumentError(`"${item}": the port must be between 1 and 65535`);
      if (!host) throw new InvalidArgumentError(`"${item}" has no host`);
      return { name: name || host, host, port };
    });
  if (specs.length === 0) throw new InvalidArgumentError("expected name=host[:port],...");
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.name)) throw new InvalidArgumentError(`the name "${spec.name}" is used twice`);
    seen.add(spec.name);
  }
  return specs;
}

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new InvalidArgumentError(`expected a port between 1 and 65535, got "${value}"`);
  return port;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The app name from package.json, else the directory's name, made into a valid PM2 name. */
function defaultName(root: string): string {
  let name = path.basename(path.resolve(root));
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { name?: unknown };
    if (typeof pkg.name === "string" && pkg.name) name = pkg.name.replace(/^@[^/]+\//, "");
  } catch {
    // No package.json: the directory's name.
  }
  const clean = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return clean || "app";
}

interface PackageFacts {
  /** The entry script: `main`, else the script `scripts.start` runs with node, else "script:start". */
  start?: string;
  from?: string;
  lockfile: boolean;
}

/** What package.json says about how the app starts, and whether a lockfile pins its dependencies. */
export function packageFacts(root: string): PackageFacts {
  const lockfile = ["package-lock.json", "npm-shrinkwrap.json"].some((f) => existsSync(path.join(root, f)));
  let pkg: { main?: unknown; scripts?: { start?: unknown } };
  try {
    pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  } catch {
    return { lockfile };
  }
  if (typeof pkg.main === "string" && pkg.main)
    return { start: pkg.main.replace(/^\.\//, ""), from: "main", lockfile };
  const start = typeof pkg.scripts?.start === "string" ? pkg.scripts.start : "";
  const script = /^\s*node\s+(?:-\S+\s+)*([^\s;&|]+\.(?:c|m)?js)\b/.exec(start)?.[1];
  if (script) return { start: script.replace(/^\.\//, ""), from: "scripts.start", lockfile };
  // Any other start script nexus can run without a shell (`next start -p $PORT`): the script itself.
  if (start && canRun(() => parseStart("script:start", JSON.stringify(pkg))))
    return { start: "script:start", from: "scripts.start", lockfile };
  return { lockfile };
}

function canRun(read: () => unknown): boolean {
  try {
    read();
    return true;
  } catch {
    return false;
  }
}

/** Where `$schema` points when no local copy can be referenced (global and npx installs). */
export const SCHEMA_URL = "https://raw.githubusercontent.com/nexus-deploy/nexus/v0.1.0/config.schema.json";

/**
 * `$schema` for editor completion: the installed package's schema, relative to the config's directory
 * (node_modules/nexus-deploy/config.schema.json, here or in a parent directory); else, when this
 * nexus runs from a checkout, the checkout's schema; else (a global or npx install, whose directory
 * comes and goes) the schema's URL.
 */
export function schemaReference(outputDir: string): string {
  let dir = path.resolve(outputDir);
  for (;;) {
    const candidate = path.join(dir, "node_modules", "nexus-deploy", SCHEMA_FILE);
    if (existsSync(candidate)) return relativeRef(outputDir, candidate);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  if (here.split(path.sep).includes("node_modules")) return SCHEMA_URL;
  // dist/cli/init.js or bundle/nexus.mjs in a checkout.
  for (const relative of ["../..", ".."]) {
    const file = path.resolve(here, relative, SCHEMA_FILE);
    if (existsSync(file)) return relativeRef(outputDir, file);
  }
  return SCHEMA_URL;
}

function relativeRef(from: string, file: string): string {
  const rel = path.relative(path.resolve(from), file).split(path.sep).join("/");
  return rel.startsWith("../") ? rel : `./${rel}`;
}

/** A local path as the config should hold it: relative to the config's directory unless absolute or ~/. */
function configPath(outputDir: string, value: string): string {
  if (value === "~" || value.startsWith("~/") || path.isAbsolute(value)) return value;
  return path.relative(path.resolve(outputDir), path.resolve(value)).split(path.sep).join("/") || ".";
}

/** --env KEY=VALUE: `{host}` or `{name}` in the value makes it per server. */
function parseEnv(entries: string[]): { shared: Record<string, string>; perServer: Record<string, string> } {
  const shared: Record<string, string> = {};
  const perServer: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const key = eq > 0 ? entry.slice(0, eq) : "";
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw usage(`--env: expected KEY=VALUE, got "${entry}"`);
    const value = entry.slice(eq + 1);
    if (/\{(host|name)\}/.test(value)) perServer[key] = value;
    else shared[key] = value;
  }
  return { shared, perServer };
}

/** The starter config: what was asked for, and the defaults worth seeing; the rest stays implicit. */
export function starterConfig(
  flags: Required<Pick<InitFlags, "name" | "servers">> & InitFlags,
  global: GlobalOptions,
  outputDir: string,
): Record<string, unknown> {
  const { shared, perServer } = parseEnv(flags.env);
  const servers = flags.servers.map((s) => {
    const env = Object.fromEntries(
      Object.entries(perServer).map(([key, value]) => [
        key,
        value.replace(/\{host\}/g, s.host).replace(/\{name\}/g, s.name),
      ]),
    );
    return {
      name: s.name,
      host: s.host,
      ...(s.port !== undefined ? { port: s.port } : {}),
      ...(Object.keys(env).length > 0 ? { env } : {}),
    };
  });
  const ssh: Record<string, string> = {};
  if (flags.user) ssh.user = flags.user;
  if (global.sshKey) ssh.privateKey = configPath(outputDir, global.sshKey);
  if (global.knownHosts) ssh.knownHosts = configPath(outputDir, global.knownHosts);
  const balancer = balancerDriver(flags).starter.entry(
    starterAnswers(flags, flags.name, flags.balancerHost ?? servers[0]?.name ?? "local"),
  );
  const start = flags.start ?? packageFacts(flags.root).start ?? "server.js";
  return {
    $schema: schemaReference(outputDir),
    app: { name: flags.name, root: configPath(outputDir, flags.root), start, port: flags.port },
    servers,
    ...(Object.keys(ssh).length > 0 ? { ssh } : {}),
    deployPath: flags.deployPath ?? `~/apps/${flags.name}`,
    pm2: { env: { NODE_ENV: "production", ...shared } },
    balancer,
    health: { path: "/health" },
    rolling: { batchSize: 1, onFailure: "rollback-all", ...(flags.watch ? { watch: flags.watch } : {}) },
  };
}

/** Ctrl-D or Ctrl-C at a prompt: init stops, writes nothing, and exits 130 quietly. */
export class PromptAborted extends Error {}

/** On a terminal, asks for what the flags left out (Enter keeps the default shown). */
async function prompt(flags: InitFlags, global: GlobalOptions): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const aborted = new AbortController();
  rl.on("SIGINT", () => aborted.abort());
  rl.on("close", () => aborted.abort());
  const ask = async (question: string, fallback?: string): Promise<string | undefined> => {
    let answer: string;
    try {
      answer = (
        await rl.question(`${question}${fallback ? ` (${fallback})` : ""}: `, { signal: aborted.signal })
      ).trim();
    } catch {
      throw new PromptAborted();
    }
    return answer || fallback;
  };
  try {
    flags.name ??= await ask("app name", defaultName(flags.root));
    const facts = packageFacts(flags.root);
    flags.start ??= await ask(
      `entry script${facts.from ? ` (package.json ${facts.from})` : ""}`,
      facts.start ?? "server.js",
    );
    while (!flags.servers) {
      const answer = await ask("servers, name=host[:port] separated by commas");
      if (!answer) continue;
      try {
        flags.servers = parseServers(answer);
      } catch (error) {
        process.stdout.write(`  ${(error as Error).message}\n`);
      }
    }
    flags.user ??= await ask("SSH user (empty: your login name)");
    if (!global.sshKey) {
      const key = await ask("SSH private key file (empty: the agent, then ~/.ssh/id_*)");
      if (key) global.sshKey = key;
    }
    flags.deployPath ??= await ask("deploy path on the servers", `~/apps/${flags.name}`);
    const types: string[] = BALANCER_DRIVERS.map((candidate) => candidate.type);
    while (!flags.balancer) {
      const type = await ask(`load balancer: ${types.join(" or ")}`, types[0]);
      if (type && types.includes(type)) flags.balancer = type;
    }
    const driver = balancerDriver(flags);
    flags.balancerHost ??= await ask(
      `server that runs ${driver.starter.label} ("local" if nexus runs there)`,
      flags.servers[0]?.name,
    );
    if (flags.watch === undefined) {
      const watch = await ask("watch each batch's error rate after it is back in rotation? (y/N)", "n");
      if (/^y(es)?$/i.test(watch ?? "")) flags.watch = "30s";
    }
    const answers = starterAnswers(flags, flags.name ?? "app", flags.balancerHost ?? "local");
    await driver.starter.ask(answers, ask);
    Object.assign(flags, answers.values);
  } finally {
    rl.close();
  }
}

/** Writes the config from the flags (and the prompts, on a terminal); prints what to run next. */
async function writeStarterConfig(flags: InitFlags, global: GlobalOptions & InitFlags): Promise<number> {
  const output = path.resolve(flags.output ?? global.config ?? DEFAULT_CONFIG_FILE);
  const label = path.relative(process.cwd(), output) || output;
  if (existsSync(output) && !flags.force) throw usage(`${label} already exists (--force overwrites it)`);
  if (!flags.yes && process.stdin.isTTY && process.stdout.isTTY) await prompt(flags, global);
  flags.name ??= defaultName(flags.root);
  if (!NAME.test(flags.name)) throw usage(`--name: "${flags.name}": use letters, digits, '.', '_' or '-'`);
  if (!flags.servers) throw usage("--servers is required without a terminal (name=host[:port],...)");
  const dir = path.dirname(output);
  const data = starterConfig({ ...flags, name: flags.name, servers: flags.servers }, global, dir);
  resolveConfig(data, label, dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(output, `${JSON.stringify(data, null, 2)}\n`, { flag: flags.force ? "w" : "wx" });
  if (global.json) {
    printResult({ command: "init", file: output, servers: flags.servers.map((s) => s.name) });
    return EXIT.ok;
  }
  process.stdout.write(nextSteps(flags, label, flags.servers));
  return EXIT.ok;
}

/** What to run after init, in order (docs/servers.md has each step). */
function nextSteps(flags: InitFlags, label: string, servers: ServerSpec[]): string {
  const c = label === DEFAULT_CONFIG_FILE ? "" : ` -c ${label}`;
  const first = servers[0]?.name ?? "<server>";
  const driver = balancerDriver(flags);
  const lb = driver.configCommand.name;
  const facts = packageFacts(flags.root);
  return [
    `wrote ${label}`,
    ...(facts.lockfile
      ? []
      : ["note: no package-lock.json in the app: the servers run npm install (unpinned) instead of npm ci"]),
    "next (docs/servers.md has each step):",
    `  nexus${c} ${lb.padEnd(17)} # ${driver.starter.configFor} for your balancer (as root)`,
    `  nexus${c} setup --dry-run    # what setup would do: deploy key, host keys, deploy path, servers file, sudoers`,
    `  nexus${c} setup              # do it (asks before trusting each host key)`,
    `  nexus${c} trust ${first.padEnd(12)} # a host key setup did not record (compare it on the server first)`,
    `  nexus${c} check              # read-only: what is still missing, each with the command that fixes it`,
    `  nexus${c} deploy --dry-run   # the plan, nothing changed`,
    `  nexus${c} deploy --rolling`,
    `  git add ${label}        # commit it: uncommitted files make the release id end in -dirty`,
    "",
  ].join("\n");
}

/** `nexus init`: writes a starter deploy.config.json, from flags or, on a terminal, prompts. */
export function initCommand(setExit: SetExit): Command {
  const init = new Command("init")
    // A bad flag value is a usage error (exit 2) rather than commander's own process.exit(1).
    .exitOverride()
    .description("write a starter deploy.config.json (from flags, or prompts on a terminal)")
    .option("-o, --output <path>", `where to write it (default: -c/--config, else ${DEFAULT_CONFIG_FILE})`)
    .option("--name <name>", "app name, the PM2 process name (default: package.json's name)")
    .option("--root <dir>", "the app directory to ship", ".")
    .option(
      "--start <script>",
      "what PM2 runs: a file relative to the app directory, script:NAME or bin:BIN ARGS (default: package.json's main, the file scripts.start runs, script:start, else server.js)",
    )
    .option("--port <n>", "port the app listens on", portNumber, 3000)
    .option("--servers <list>", "name=host[:port],... (a bare host is its own name)", parseServers)
    .option("--user <user>", "SSH user")
    .option("--deploy-path <path>", "where releases live on the servers (default: ~/apps/<name>)")
    .option("--balancer-host <server>", `the server that runs the balancer, or "local" (default: the first)`)
    .addOption(
      new Option("--balancer <type>", `the load balancer (default: ${BALANCER_DRIVERS[0].type})`).choices(
        BALANCER_DRIVERS.map((driver) => driver.type),
      ),
    )
    .option("--watch <duration>", 'rolling.watch: watch each batch\'s error rate this long ("30s")')
    .option(
      "--env <KEY=VALUE>",
      "app env, repeatable; {host} or {name} in the value sets it per server",
      collect,
      [],
    )
    .option("-y, --yes", "ask nothing, even on a terminal: flags and defaults only")
    .option("--force", "overwrite an existing file");
  // Each balancer driver's own flags (Nginx's servers file, HAProxy's backend...).
  for (const driver of BALANCER_DRIVERS)
    for (const option of driver.starter.options) init.option(option.flags, option.description);
  init
    .addHelpText(
      "after",
      `
The global --ssh-key and --known-hosts flags are written to ssh.privateKey and ssh.knownHosts.

Examples:
  nexus init
  nexus init --servers web1=10.0.0.11,web2=10.0.0.12 --user deploy \\
    --upstream-file /etc/nginx/nexus/api-servers.conf --env HOST={host}
  nexus --ssh-key ~/.ssh/deploy_ed25519 init -o deploy/production.json --servers 10.0.0.11,10.0.0.12 -y`,
    )
    .action(
      action(
        setExit,
        async ({ global }, flags: InitFlags) => {
          try {
            return await writeStarterConfig(flags, global as GlobalOptions & InitFlags);
          } catch (error) {
            if (error instanceof PromptAborted) {
              process.stdout.write("\n");
              return EXIT.interrupted;
            }
            // The config it would write, as nexus reads it: said without a place (the file is not written).
            if (error instanceof ConfigError) throw new UsageError(error.message);
            const code = (error as NodeJS.ErrnoException).code;
            // The file could not be written (there, or as asked): said as the failure it is.
            if (code === "EEXIST" || code === "ENOENT" || code === "EACCES")
              throw new NexusError((error as Error).message);
            throw error;
          }
        },
        "nexus init",
      ),
    );
  return init;
}

/** The balancer driver init writes an entry for: --balancer, else the default one. */
function balancerDriver(flags: InitFlags): BalancerDriver {
  const driver =
    BALANCER_DRIVERS.find((candidate) => candidate.type === flags.balancer) ?? BALANCER_DRIVERS[0];
  return driver as unknown as BalancerDriver;
}

/** What the driver's starter reads: the app's facts, and its own flags by their option names. */
function starterAnswers(flags: InitFlags, name: string, host: string): StarterAnswers {
  const given = flags as unknown as Record<string, unknown>;
  const values = Object.fromEntries(
    balancerDriver(flags).starter.options.map((option) => {
      const key = new Option(option.flags).attributeName();
      return [key, typeof given[key] === "string" ? (given[key] as string) : undefined];
    }),
  );
  return {
    name,
    host,
    values,
    ...(flags.user ? { user: flags.user } : {}),
    ...(flags.watch ? { watch: flags.watch } : {}),
  };
}
