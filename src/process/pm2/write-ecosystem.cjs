// @ts-check
/**
 * `node -e <this> FILE KIND NAME [TOP]`, the ecosystem file's JSON on stdin (write-ecosystem.sh
 * runs it): finds on the server, in the installed release (the app's `cwd`), the file PM2 must run,
 * sets it as the app's `script`, writes FILE (0600, through a temporary file) and prints
 * `@start <script>`. What only the release knows once installed:
 *
 * - KIND "bin": the JS file of the dependency binary NAME, from the `bin` field of the package.json
 *   of the app's dependency that declares it (`node_modules/next/dist/bin/next`). Never the
 *   `node_modules/.bin` entry: pnpm writes shell scripts there, which node cannot run and PM2
 *   cannot cluster. A binary that is a shell script or a compiled executable is refused.
 * - KIND "file": the file `node NAME` runs (`node dist/main` runs dist/main.js): PM2 starts
 *   exactly the path it is given.
 *
 * TOP, the release's directory when the app's `cwd` is a workspace package inside it: a
 * dependency may be installed in the node_modules of any directory from `cwd` up to TOP (npm and
 * Yarn 1 hoist a workspace's dependencies to the root's), as Node's own resolution finds it.
 *
 * Exit 2 with the reason on stderr when there is none: staging fails, nothing leaves rotation.
 */
const fs = require("node:fs");
const path = require("node:path");

const [file = "", kind = "", name = "", top = ""] = process.argv.slice(1);

/** @param {string} message */
const fail = (message) => {
  process.stderr.write(`nexus: ${message}\n`);
  process.exit(2);
};

/** @param {string} file */
const readJson = (file) => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
};

/** @param {string} file */
const isFile = (file) => {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

/**
 * The names a package's `bin` field gives (a string: the package's name without its scope).
 * @param {{ name?: unknown, bin?: unknown }} meta
 * @returns {Record<string, string>}
 */
const binsOf = (meta) => {
  if (typeof meta.bin === "string" && typeof meta.name === "string")
    return { [meta.name.replace(/^@[^/]+\//, "")]: meta.bin };
  if (meta.bin && typeof meta.bin === "object") {
    /** @type {Record<string, string>} */
    const out = {};
    for (const [key, value] of Object.entries(meta.bin)) if (typeof value === "string") out[key] = value;
    return out;
  }
  return {};
};

/**
 * Refuses what node cannot run: a script for another interpreter (its `#!` line) or a binary.
 * @param {string} cwd
 * @param {string} script
 */
const assertNodeProgram = (cwd, script) => {
  const head = Buffer.alloc(512);
  let length = 0;
  try {
    const fd = fs.openSync(path.join(cwd, script), "r");
    length = fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
  } catch (error) {
    fail(`${script}: ${/** @type {Error} */ (error).message}`);
  }
  const text = head.subarray(0, length);
  if (text.includes(0)) fail(`${name} (${script}) is a compiled executable, not a Node program`);
  const line = text.toString("utf8").split("\n")[0] ?? "";
  if (line.startsWith("#!") && !/\bnode\b/.test(line))
    fail(
      `${name} (${script}) is a script for ${line.slice(2).trim()}, not a Node program: start what it runs instead`,
    );
};

/**
 * The directories whose node_modules may hold the app's dependencies: `cwd`, then its parents up
 * to TOP (a workspace package), relative to `cwd` ("", "..", "../..").
 * @param {string} cwd
 */
const moduleDirs = (cwd) => {
  const dirs = [""];
  const up = top ? path.relative(top, cwd) : "";
  if (!up || up.startsWith("..") || path.isAbsolute(up)) return dirs;
  for (let i = 1; i <= up.split(path.sep).length; i++) dirs.push(Array(i).fill("..").join(path.sep));
  return dirs;
};

/**
 * Whether `script` (relative to `cwd`) stays in the release: inside `cwd`, or inside TOP.
 * @param {string} cwd
 * @param {string} script
 * @param {boolean} [real] `cwd` is a real path (TOP is compared as one too)
 */
const inRelease = (cwd, script, real = false) => {
  const root = top ? (real ? fs.realpathSync(top) : top) : cwd;
  const rel = path.relative(root, path.resolve(cwd, script));
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
};

/** @param {string} cwd */
const findBin = (cwd) => {
  const pkg = readJson(path.join(cwd, "package.json")) ?? {};
  /** @param {unknown} deps */
  const names = (deps) => (deps && typeof deps === "object" ? Object.keys(deps) : []);
  const own = [...names(pkg.dependencies), ...names(pkg.optionalDependencies)];
  const dirs = moduleDirs(cwd);
  // Yarn 2+ installs devDependencies too: one of them may provide it.
  for (const dep of [...own, ...names(pkg.devDependencies)]) {
    const at = dirs.find((dir) => isFile(path.join(cwd, dir, "node_modules", dep, "package.json")));
    if (at === undefined) continue;
    const meta = readJson(path.join(cwd, at, "node_modules", dep, "package.json"));
    const target = meta && binsOf(meta)[name];
    if (target === undefined) continue;
    const script = path.join(at, "node_modules", dep, target);
    if (!inRelease(cwd, script)) fail(`${dep}'s bin "${name}" (${target}) points outside the release`);
    if (!isFile(path.join(cwd, script))) fail(`${dep}'s bin "${name}" (${script}) is not in the release`);
    return script;
  }
  // A binary of a dependency's dependency: npm and Yarn 1 link those into .bin too (a symlink).
  for (const dir of dirs) {
    const link = path.join(cwd, dir, "node_modules", ".bin", name);
    try {
      if (fs.lstatSync(link).isSymbolicLink()) {
        const script = path.relative(fs.realpathSync(cwd), fs.realpathSync(link));
        if (inRelease(fs.realpathSync(cwd), script, true)) return script;
      }
    } catch {}
  }
  fail(
    `no installed dependency of the app provides the binary "${name}" (looked in the "bin" of ${own.length > 0 ? own.join(", ") : "no dependencies"}): add the package that provides it to "dependencies" (devDependencies are not installed on the servers)`,
  );
  return "";
};

/** @param {string} cwd */
const findFile = (cwd) => {
  const candidates = [name, `${name}.js`, `${name}.cjs`, `${name}.mjs`, path.join(name, "index.js")];
  const found = candidates.find((candidate) => isFile(path.join(cwd, candidate)));
  if (!found) fail(`node ${name}: none of ${candidates.join(", ")} is in the release`);
  return /** @type {string} */ (found);
};

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const ecosystem = JSON.parse(input);
  const app = ecosystem.apps[0];
  const cwd = String(app.cwd);
  const script = kind === "bin" ? findBin(cwd) : findFile(cwd);
  assertNodeProgram(cwd, script);
  app.script = script;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(ecosystem, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  process.stdout.write(`@start ${script}\n`);
});
