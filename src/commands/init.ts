import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { action, type SetExit } from "../cli/action.js";
import type { GlobalOptions } from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { DEFAULT_CONFIG_FILE, resolveConfig } from "../config/load.js";
import { EXIT, NexusError, UsageError } from "../errors.js";

interface InitFlags {
  output?: string;
  name?: string;
  root: string;
  start: string;
  port: number;
  servers?: ServerSpec[];
  user?: string;
  deployPath?: string;
  balancerHost?: string;
  upstreamFile?: string;
  testCommand?: string;
  reloadCommand?: string;
  pidFile?: string;
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
  const balancer: Record<string, string> = {
    host: flags.balancerHost ?? servers[0]?.name ?? "local",
    upstreamFile: flags.upstreamFile ?? defaultServersFile(flags.name),
  };
  if (flags.testCommand) balancer.testCommand = flags.testCommand;
  if (flags.reloadCommand) balancer.reloadCommand = flags.reloadCommand;
  if (flags.pidFile) balancer.pidFile = flags.pidFile;
  return {
    $schema: schemaReference(outputDir),
    app: { name: flags.name, root: configPath(outputDir, flags.root), start: flags.start, port: flags.port },
    servers,
    ...(Object.keys(ssh).length > 0 ? { ssh } : {}),
    deployPath: flags.deployPath ?? `~/apps/${flags.name}`,
    pm2: { env: { NODE_ENV: "production", ...shared } },
    balancer,
    health: { path: "/health" },
    rolling: { batchSize: 1, onFailure: "rollback-all" },
  };
}

/** On a terminal, asks for what the flags left out (Enter keeps the default shown). */
async function prompt(flags: InitFlags): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const ask = async (question: string, fallback?: string): Promise<string | undefined> => {
    const answer = (await rl.question(`${question}${fallback ? ` (${fallback})` : ""}: `)).trim();
    return answer || fallback;
  };
  try {
    flags.name ??= await ask("app name", defaultName(flags.root));
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
    flags.deployPath ??= await ask("deploy path on the servers", `~/apps/${flags.name}`);
    flags.balancerHost ??= await ask(
      'server that runs Nginx ("local" if nexus runs there)',
      flags.servers[0]?.name,
    );
    flags.upstreamFile ??= await ask(
      "servers file on it (server lines only, included inside the upstream block)",
      defaultServersFile(flags.name ?? "app"),
    );
  } finally {
    rl.close();
  }
}

/** Writes the config from the flags (and the prompts, on a terminal); prints what to run next. */
async function writeStarterConfig(flags: InitFlags, global: GlobalOptions & InitFlags): Promise<number> {
  const output = path.resolve(flags.output ?? global.config ?? DEFAULT_CONFIG_FILE);
  const label = path.relative(process.cwd(), output) || output;
  if (existsSync(output) && !flags.force) throw usage(`${label} already exists (--force overwrites it)`);
  if (!flags.yes && process.stdin.isTTY && process.stdout.isTTY) await prompt(flags);
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
  const withConfig = label === DEFAULT_CONFIG_FILE ? "" : ` -c ${label}`;
  process.stdout.write(
    `wrote ${label}\nnext:\n  nexus${withConfig} nginx-config      # the servers file and the upstream block for your Nginx\n  nexus${withConfig} deploy --dry-run  # the plan, nothing changed\n  nexus${withConfig} deploy --rolling\n`,
  );
  return EXIT.ok;
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
    .option("--start <script>", "entry script, relative to the app directory", "server.js")
    .option("--port <n>", "port the app listens on", portNumber, 3000)
    .option("--servers <list>", "name=host[:port],... (a bare host is its own name)", parseServers)
    .option("--user <user>", "SSH user")
    .option("--deploy-path <path>", "where releases live on the servers (default: ~/apps/<name>)")
    .option("--balancer-host <server>", 'the server that runs Nginx, or "local" (default: the first)')
    .option(
      "--upstream-file <path>",
      "the servers file on the balancer host: server lines only, included inside the upstream block (never in conf.d/, which Nginx includes in http)",
    )
    .option("--test-command <cmd>", 'how to test the Nginx config (default: "nginx -t")')
    .option("--reload-command <cmd>", 'how to reload Nginx (default: "nginx -s reload")')
    .option("--pid-file <path>", "the Nginx master's pid file (default: /run/nginx.pid)")
    .option(
      "--env <KEY=VALUE>",
      "app env, repeatable; {host} or {name} in the value sets it per server",
      collect,
      [],
    )
    .option("-y, --yes", "ask nothing, even on a terminal: flags and defaults only")
    .option("--force", "overwrite an existing file")
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

/** As `nexus nginx-config` prints it: outside conf.d/, whose files Nginx includes in `http`. */
function defaultServersFile(name: string): string {
  return `/etc/nginx/nexus/${name}-servers.conf`;
}
