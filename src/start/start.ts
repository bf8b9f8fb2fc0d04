import path from "node:path/posix";
import {
  type Assignment,
  CommandLineError,
  expandWord,
  literal,
  parseCommandLine,
  showWord,
  type Word,
} from "./command-line.js";

/**
 * What `app.start` says to run, resolved to one program PM2 starts itself (never npm, pnpm, Yarn
 * or a shell in between: their process would get PM2's SIGINT, not the app). Pure: the package
 * script's text is given.
 *
 * - a file (`server.js`, `dist/main.js`): as it always was;
 * - `script:NAME` (or `npm:NAME`): the package script NAME, read as `sh -c` would read it, when
 *   it is one `node [OPTIONS] FILE [ARGS]` or `BIN [ARGS]` command;
 * - `bin:BIN [ARGS]`: a dependency's binary, by the name in its package.json `bin`.
 */
export interface StartCommand {
  /** app.start as written. */
  spec: string;
  /** The package script app.start names, with its text. */
  script?: { name: string; text: string };
  /** `NAME=value` before the command: added to the app's environment. */
  env: Assignment[];
  /**
   * A file in the release (`node`: run by a `node` command, whose options and arguments it
   * carries; PM2 is told to use node), or a dependency's binary, whose JS file each server finds
   * in node_modules after the install.
   */
  run: { file: string; node: boolean } | { bin: string };
  /** Options for node itself (`--enable-source-maps`), before the file. */
  nodeArgs: Word[];
  /** The program's arguments. */
  args: Word[];
  /** What nexus does not do that the package manager would have (a `prestart` script). */
  warnings: string[];
}

/** A start command nexus cannot run as asked: the message starts with "app.start: ". */
export class StartError extends Error {}

/** Runners that would stand between PM2 and the app, and what to write instead. */
const RUNNERS = new Set(["npm", "npx", "pnpm", "pnpx", "yarn", "yarnpkg", "bun", "bunx", "corepack"]);
const SHELLS = new Set(["sh", "bash", "dash", "zsh", "ksh", "fish"]);

/** Node options whose value may be the next word (`-r dotenv/config`); any option takes `--opt=value`. */
const NODE_OPTIONS_WITH_VALUE = new Set([
  "-r",
  "--require",
  "--import",
  "--loader",
  "--experimental-loader",
  "-C",
  "--conditions",
  "--env-file",
  "--env-file-if-exists",
  "--title",
  "--input-type",
  "--inspect-port",
  "--debug-port",
  "--redirect-warnings",
  "--disable-warning",
  "--unhandled-rejections",
  "--dns-result-order",
  "--stack-size",
  "--max-http-header-size",
  "--openssl-config",
  "--icu-data-dir",
  "--diagnostic-dir",
  "--report-dir",
  "--report-directory",
  "--report-filename",
  "--report-signal",
  "--heapsnapshot-signal",
  "--secure-heap",
  "--secure-heap-min",
  "--experimental-default-type",
  "--cpu-prof-dir",
  "--cpu-prof-name",
  "--heap-prof-dir",
  "--heap-prof-name",
  "--tls-cipher-list",
  "--tls-keylog",
  "--use-largepages",
]);

/** Node options that run no file, or run it under a supervisor of node's own. */
const NODE_OPTIONS_REFUSED: Record<string, string> = {
  "-e": "evaluates code instead of running a file",
  "--eval": "evaluates code instead of running a file",
  "-p": "evaluates code instead of running a file",
  "--print": "evaluates code instead of running a file",
  "-i": "starts a REPL",
  "--interactive": "starts a REPL",
  "-c": "only checks a file's syntax",
  "--check": "only checks a file's syntax",
  "--test": "runs tests",
  "--run": "runs a package script through node (a shell again)",
  "-v": "prints node's version",
  "--version": "prints node's version",
  "-h": "prints node's help",
  "--help": "prints node's help",
  "--watch": "restarts the app itself on changes, from a parent process PM2's signals stop at",
  "--watch-path": "restarts the app itself on changes, from a parent process PM2's signals stop at",
};

const ADVICE =
  'nexus starts the app without a shell so that PM2\'s signals reach it: make the script one command, such as "node dist/main.js" or "next start -p $PORT" (a build step belongs in app.build), or name the entry file in app.start';

/** Reads app.start; `packageJson` is the app's package.json text (undefined: it has none). */
export function parseStart(spec: string, packageJson: string | undefined): StartCommand {
  const scriptName = /^(?:script|npm):(.*)$/s.exec(spec)?.[1];
  if (scriptName !== undefined) return fromScript(spec, scriptName.trim(), packageJson);
  const bin = /^bin:(.*)$/s.exec(spec)?.[1];
  if (bin !== undefined) return fromBin(spec, bin);
  return { spec, env: [], run: { file: spec, node: false }, nodeArgs: [], args: [], warnings: [] };
}

function fromScript(spec: string, name: string, packageJson: string | undefined): StartCommand {
  if (name === "") throw new StartError(`app.start: "${spec}" names no script: write "script:start"`);
  if (packageJson === undefined)
    throw new StartError(`app.start: "${spec}" names a package script, but app.root has no package.json`);
  let pkg: { scripts?: Record<string, unknown> };
  try {
    pkg = JSON.parse(packageJson);
  } catch {
    throw new StartError(`app.start: "${spec}" names a package script, but package.json is not valid JSON`);
  }
  const scripts = pkg.scripts && typeof pkg.scripts === "object" ? pkg.scripts : {};
  const text = scripts[name];
  if (typeof text !== "string") {
    const names = Object.keys(scripts);
    throw new StartError(
      `app.start: package.json has no script "${name}"${names.length > 0 ? ` (its scripts: ${names.join(", ")})` : ""}`,
    );
  }
  const where = `the script "${name}" (${text.trim()})`;
  const command = readCommand(text, where);
  const warnings = [`pre${name}`, `post${name}`]
    .filter((hook) => typeof scripts[hook] === "string")
    .map(
      (hook) =>
        `app.start: the script "${hook}" is not run (npm would run it around "${name}"; nexus runs "${name}"'s command alone): move it to app.build or hooks.afterStart`,
    );
  return { spec, script: { name, text }, ...command, warnings };
}

function fromBin(spec: string, text: string): StartCommand {
  const command = readCommand(text, `"${spec}"`);
  if (!("bin" in command.run)) {
    const file = command.run.file;
    throw new StartError(
      `app.start: "${spec}" runs ${command.run.node ? "node" : file}, not a dependency's binary: set app.start to the file ("${file}"), with pm2.options.args and node_args for its arguments`,
    );
  }
  return { spec, ...command, warnings: [] };
}

/** One command: the program, its node options and arguments, the environment it sets. */
function readCommand(text: string, where: string): Pick<StartCommand, "env" | "run" | "nodeArgs" | "args"> {
  let line: ReturnType<typeof parseCommandLine>;
  try {
    line = parseCommandLine(text);
  } catch (error) {
    if (!(error instanceof CommandLineError)) throw error;
    throw new StartError(`app.start: ${where} ${error.message}: ${ADVICE}`);
  }
  const env = [...line.assignments];
  const words = [...line.words];
  // `exec node x.js`, `env A=1 node x.js`, `cross-env A=1 node x.js`: the same program, no wrapper.
  for (;;) {
    const first = words[0] && literal(words[0]);
    if (first === "exec" || first === "env" || first === "cross-env") {
      words.shift();
      while (words[0]) {
        const word = literal(words[0]);
        const assignment = word !== undefined ? /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(word) : null;
        if (!assignment || first === "exec") break;
        env.push({ name: assignment[1] as string, value: [{ text: assignment[2] as string }] });
        words.shift();
      }
      continue;
    }
    break;
  }
  const head = words.shift();
  if (!head) throw new StartError(`app.start: ${where} sets variables but runs no command: ${ADVICE}`);
  const program = literal(head);
  if (program === undefined)
    throw new StartError(
      `app.start: ${where} takes its command's name from a variable (${showWord(head)}): nexus must know what it starts`,
    );
  if (program === "node" || program === "nodejs") return { env, ...nodeCommand(words, where) };
  if (RUNNERS.has(program)) {
    throw new StartError(
      `app.start: ${where} runs ${program}, which would stand between PM2 and the app (PM2's signals stop at it): write the command it runs (for "npx next start": "next start"; for "npm run other": that script's command, or "script:other")`,
    );
  }
  if (SHELLS.has(program)) throw new StartError(`app.start: ${where} runs a shell (${program}): ${ADVICE}`);
  if (program.includes("/")) {
    const bin = /^(?:\.\/)?node_modules\/\.bin\/([^/]+)$/.exec(program)?.[1];
    if (bin) return { env, run: { bin }, nodeArgs: [], args: words };
    if (isScriptFile(program))
      return { env, run: { file: relativeFile(program, where), node: true }, nodeArgs: [], args: words };
    throw new StartError(
      `app.start: ${where} runs the executable ${program}: nexus starts Node programs (write "node ${program}" if it is one)`,
    );
  }
  return { env, run: { bin: program }, nodeArgs: [], args: words };
}

/** `node [OPTIONS] FILE [ARGS]`. */
function nodeCommand(words: Word[], where: string): Pick<StartCommand, "run" | "nodeArgs" | "args"> {
  const nodeArgs: Word[] = [];
  while (words.length > 0) {
    const word = words[0] as Word;
    const text = literal(word);
    if (text === "--") {
      words.shift();
      break;
    }
    if (text === undefined || !text.startsWith("-") || text === "-") break;
    const option = text.replace(/=.*$/s, "");
    const refused = NODE_OPTIONS_REFUSED[option];
    if (refused) throw new StartError(`app.start: ${where} runs node ${option}, which ${refused}: ${ADVICE}`);
    nodeArgs.push(words.shift() as Word);
    if (!text.includes("=") && NODE_OPTIONS_WITH_VALUE.has(option)) {
      const value = words.shift();
      if (!value) throw new StartError(`app.start: ${where}: node's ${option} has no value`);
      nodeArgs.push(value);
    }
  }
  const fileWord = words.shift();
  if (!fileWord) throw new StartError(`app.start: ${where} runs node without a file (a REPL): ${ADVICE}`);
  const file = literal(fileWord);
  if (file === undefined || file === "-")
    throw new StartError(
      `app.start: ${where} takes node's file from ${file === "-" ? "standard input" : `a variable (${showWord(fileWord)})`}: nexus must know what it starts`,
    );
  return { run: { file: relativeFile(file, where), node: true }, nodeArgs, args: words };
}

/** A path the shell would have run relative to the app root, normalized ("./dist/main.js" → "dist/main.js"). */
function relativeFile(file: string, where: string): string {
  if (path.isAbsolute(file))
    throw new StartError(
      `app.start: ${where} runs ${file}, outside the release: use a path relative to app.root`,
    );
  const normal = path.normalize(file);
  if (normal === ".." || normal.startsWith("../"))
    throw new StartError(
      `app.start: ${where} runs ${file}, outside the release: use a path relative to app.root`,
    );
  return normal;
}

/** A file name node runs as JavaScript without guessing its extension. */
export function isScriptFile(file: string): boolean {
  return /\.(c|m)?js$/.test(file);
}

/**
 * The files node would try for `node FILE` when FILE has no extension node runs (`node dist/main`
 * runs dist/main.js): FILE, FILE.js, FILE.cjs, FILE.mjs, FILE/index.js.
 */
export function nodeCandidates(file: string): string[] {
  return isScriptFile(file)
    ? [file]
    : [file, `${file}.js`, `${file}.cjs`, `${file}.mjs`, path.join(file, "index.js")];
}

/** One line saying what PM2 will run, for `deploy --dry-run`, `nexus check` and the deploy's output. */
export function describeStart(start: StartCommand): string {
  if (!("bin" in start.run) && !start.run.node) return start.spec;
  const words = (list: Word[]) => list.map((word) => ` ${showWord(word)}`).join("");
  const from = start.script ? `the script "${start.script.name}": ` : "";
  const env =
    start.env.length > 0
      ? `; environment ${start.env.map((a) => `${a.name}=${showWord(a.value)}`).join(" ")}`
      : "";
  if ("bin" in start.run)
    return `${from}${start.run.bin}${words(start.args)}: PM2 runs the JS file of the dependency's binary ${start.run.bin} (from its package.json "bin", found on each server after the install) with node, no npm in between${env}`;
  return `${from}node${words(start.nodeArgs)} ${start.run.file}${words(start.args)}: PM2 runs ${start.run.file} with node, no npm in between${env}`;
}

/** The variables nexus itself puts in the app's environment (deploy/release-env.ts). */
const SET_BY_NEXUS = ["PORT", "NEXUS_RELEASE", "NEXUS_SERVER"];

/** What startProblems needs of a server: its app environment and which of it is secret. */
export interface StartServer {
  name: string;
  env: Readonly<Record<string, string>>;
  secretKeys?: readonly string[];
  missingSecrets?: readonly { key: string }[];
}

/**
 * What the command's variables would do wrong: a variable that is not in the app's environment
 * on every server (nexus expands them when it writes the process file: the server's shell is
 * not there to), a secret in an argument (every user of the server sees arguments in `ps`), a
 * variable nexus sets itself (PORT: the surge strategy's second port) set by the script.
 */
export function startProblems(start: StartCommand, servers: readonly StartServer[]): string[] {
  const problems = new Set<string>();
  const where = start.script ? `the script "${start.script.name}"` : `"${start.spec}"`;
  for (const { name } of start.env)
    if (SET_BY_NEXUS.includes(name))
      problems.add(
        `app.start: ${where} sets ${name}, which nexus sets (${name === "PORT" ? "app.port, or the surge strategy's second port" : "for the health gate and logs"}): leave it out`,
      );
  const reads = (words: Word[], inArgs: boolean) =>
    words.flatMap((word) =>
      word.flatMap((part) =>
        "variable" in part ? [{ name: part.variable, fallback: !!part.fallback, inArgs }] : [],
      ),
    );
  const used = [
    ...reads(start.nodeArgs, true),
    ...reads(start.args, true),
    ...reads(
      start.env.map((a) => a.value),
      false,
    ),
  ];
  for (const variable of used) {
    for (const server of servers) {
      const secret =
        server.secretKeys?.includes(variable.name) ||
        server.missingSecrets?.some((m) => m.key === variable.name);
      if (secret && variable.inArgs) {
        problems.add(
          `app.start: ${where} puts $${variable.name}, a secret (fromEnv), in the command's arguments, which every user of the server sees (ps): let the app read it from its environment`,
        );
        continue;
      }
      const known =
        secret || SET_BY_NEXUS.includes(variable.name) || Object.hasOwn(server.env, variable.name);
      if (!known && !variable.fallback)
        problems.add(
          `app.start: ${where} reads $${variable.name}, which is not in the app's environment on ${server.name} (nexus expands the command's variables from pm2.env, servers[].env and PORT, NEXUS_RELEASE, NEXUS_SERVER, not from a shell on the server): set it in pm2.env, or write \${${variable.name}:-default}`,
        );
    }
  }
  return [...problems];
}

/** The command's environment, node options and arguments, its variables expanded from `env`. */
export function expandStart(
  start: StartCommand,
  env: Readonly<Record<string, string>>,
): { env: Record<string, string>; nodeArgs: string[]; args: string[] } {
  const expand = (words: Word[]) => words.flatMap((word) => expandWord(word, env));
  return {
    env: Object.fromEntries(start.env.map((a) => [a.name, expandWord(a.value, env)[0] ?? ""])),
    nodeArgs: expand(start.nodeArgs),
    args: expand(start.args),
  };
}
