// @ts-check
/**
 * `node -e <this> CURRENT NAME PINNED LOCKFILE WORKSPACE PACKAGES ARG…`, in the new release
 * (install.sh runs it):
 * installs its dependencies with the package manager NAME (npm, pnpm, yarn) and its frozen-lockfile
 * arguments ARG…, or hard-links the current release's node_modules when nothing they were built
 * from has changed. Prints `@reused`, or `@installed <why>`; `@note <text>` lines say what the
 * stage line should add. Exit 127: the package manager is not on this server.
 *
 * The reuse key, written to node_modules/.nexus-install-key after an install: the lockfile's and
 * package.json's sha256, the package manager and its version, and this server's Node ABI
 * (process.versions.modules), platform and arch. Native modules (bcrypt, sharp, better-sqlite3)
 * are built for one ABI: after a Node upgrade on the server, reusing them would crash the app at
 * start, so a changed ABI means a fresh install. The key is read by the `node` on PATH, the one
 * the install runs under and node-gyp builds against.
 *
 * A workspace package (WORKSPACE, its directory; PACKAGES, the workspace packages shipped, one
 * per line): the key also holds the workspace and the sha256 of its packages' package.json files
 * and of pnpm-workspace.yaml; a reuse links the root's node_modules and each package's (pnpm
 * keeps links there; npm, a version that could not be hoisted).
 */
const { spawnSync } = require("node:child_process");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const [current = "", name = "", pinned = "", lockfile = "", workspace = "", packageList = "", ...args] =
  process.argv.slice(1);
const packages = packageList.split("\n").filter(Boolean);
const KEY_FILE = ".nexus-install-key";

/** @param {string} file */
const sha256 = (file) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** @param {string} command the executable's path on PATH, or undefined */
const onPath = (command) => {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, command);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
};

/**
 * The version of the package manager at `file`: from the package.json of the package it belongs
 * to (no process to start), else from `<name> --version` (a corepack shim, a wrapper).
 * @param {string} file
 */
const versionOf = (file) => {
  let dir = path.dirname(fs.realpathSync(file));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
      if (pkg.name === name || (name === "yarn" && pkg.name === "@yarnpkg/cli-dist"))
        return String(pkg.version);
      if (pkg.name) break;
    } catch {}
  }
  const run = spawnSync(file, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return (run.stdout ?? "").trim().split("\n").pop() || "unknown";
};

/** The command that installs, and the version it runs; corepack when the app pins another version. */
const manager = () => {
  const binary = onPath(name);
  const version = binary ? versionOf(binary) : undefined;
  if (pinned && version !== pinned && onPath("corepack"))
    return { argv: ["corepack", `${name}@${pinned}`], version: pinned };
  if (!binary) {
    console.error(
      `nexus: ${name} is not installed on this server (the app uses ${name}${pinned ? ` ${pinned}` : ""}): install it, or corepack (\`corepack enable\`)`,
    );
    process.exit(127);
  }
  if (pinned && version !== pinned)
    console.log(`@note ${name} ${version} on the server; the app pins ${pinned} (no corepack to run it)`);
  return { argv: [binary], version: String(version) };
};

/** One sha256 over the shipped workspace packages' package.json files and pnpm-workspace.yaml. */
function workspaceManifests() {
  const hash = createHash("sha256");
  for (const file of [
    ...packages.map((dir) => path.join(dir, "package.json")),
    "pnpm-workspace.yaml",
  ].sort()) {
    hash.update(`${file}\0${fs.existsSync(file) ? sha256(file) : "none"}\0`);
  }
  return hash.digest("hex");
}

const pm = manager();
const key = [
  `manager ${name} ${pm.version}`,
  `lockfile ${lockfile ? `${lockfile} ${sha256(lockfile)}` : "none"}`,
  `package.json ${sha256("package.json")}`,
  ...(workspace ? [`workspace ${workspace} ${workspaceManifests()}`] : []),
  `node-abi ${process.versions.modules}`,
  `platform ${process.platform}`,
  `arch ${process.arch}`,
].join("\n");

/** Why the current release's node_modules cannot be reused, or "" when it can. */
const whyNotReuse = () => {
  if (!fs.existsSync(current)) return "the first release on this server";
  const modules = path.join(current, "node_modules");
  if (!fs.existsSync(modules)) return "no node_modules in the current release";
  let old;
  try {
    old = fs.readFileSync(path.join(modules, KEY_FILE), "utf8");
  } catch {
    return "the current node_modules has no install key";
  }
  const before = new Map(old.split("\n").map((line) => [line.split(" ")[0], line]));
  for (const line of key.split("\n")) {
    const field = line.split(" ")[0] ?? "";
    const was = before.get(field);
    if (was === line) continue;
    const [, ...oldWords] = (was ?? "").split(" ");
    const [, ...newWords] = line.split(" ");
    if (field === "node-abi")
      return `Node ABI changed (${oldWords[0] ?? "?"} → ${newWords[0]}): native modules must be rebuilt`;
    if (field === "manager") return `${oldWords.join(" ") || "?"} → ${newWords.join(" ")}`;
    if (field === "lockfile") return `${lockfile || "lockfile"} changed`;
    if (field === "package.json") return "package.json changed";
    if (field === "workspace")
      return oldWords[0] === newWords[0]
        ? `a package.json of the workspace ${workspace} changed`
        : `the workspace changed (${oldWords[0] ?? "none"} → ${newWords[0] ?? "none"})`;
    return `${field} changed (${oldWords.join(" ") || "?"} → ${newWords.join(" ")})`;
  }
  // The current release was a workspace package's; this one is the whole app.
  const was = before.get("workspace");
  if (was && !workspace) return `the workspace changed (${was.split(" ")[1]} → none)`;
  return "";
};

const why = whyNotReuse();
if (!why) {
  // The root's node_modules, and each workspace package's that the current release has.
  for (const dir of [".", ...packages]) {
    const from = path.join(current, dir, "node_modules");
    if (dir !== "." && !fs.existsSync(from)) continue;
    const copy = spawnSync("cp", ["-al", from, path.join(dir, "node_modules")], { stdio: "inherit" });
    if (copy.status !== 0) process.exit(copy.status ?? 1);
  }
  console.log("@reused");
  process.exit(0);
}
const [command = name, ...prefix] = pm.argv;
// The manager's own output goes to stderr: stdout carries only this program's @ lines.
const install = spawnSync(command, [...prefix, ...args], { stdio: ["ignore", 2, 2] });
if (install.error) {
  console.error(`nexus: could not run ${name}: ${install.error.message}`);
  process.exit(127);
}
if (install.status !== 0) process.exit(install.status ?? 1);
// Yarn's Plug'n'Play keeps no node_modules (.pnp.cjs and .yarn/ instead): nothing to reuse.
if (!fs.existsSync(".pnp.cjs")) {
  fs.mkdirSync("node_modules", { recursive: true });
  fs.writeFileSync(path.join("node_modules", KEY_FILE), `${key}\n`);
}
console.log(`@installed ${why}`);
