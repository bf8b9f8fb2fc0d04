import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";

/**
 * `app.workspace`: one package of an npm, pnpm or Yarn workspace whose root is app.root. What
 * ships is the root's manifests, the package and the workspace packages it depends on (its
 * closure); the install on the servers is filtered to it; its process runs in its directory.
 */
export interface Workspace {
  /** The package's directory, relative to the root, "/"-separated ("apps/api"). */
  dir: string;
  /** Its package.json `name`: what the package managers' filters select. */
  name: string;
  /** The package and the workspace packages it depends on, transitively (dirs, sorted). */
  dirs: string[];
  /** `file:` dependencies of those packages that lie elsewhere in the root (a vendored tarball). */
  extras: string[];
}

/** A package of the workspace, as its package.json says. */
export interface WorkspacePackage {
  dir: string;
  name?: string;
  /** `dependencies` and `optionalDependencies`: what a production install needs. */
  dependencies: Record<string, string>;
}

/**
 * Files of the root that every workspace install reads, when present: manifests, lockfiles,
 * the package managers' settings and the files those name (Yarn's release and plugins, pnpm's
 * patches). They still go through the app's exclusion rules (.npmrc ships only when app.include
 * names it: it often holds a registry token).
 */
export const WORKSPACE_ROOT_FILES = [
  "package.json",
  "package-lock.json",
  "npm-shrinkwrap.json",
  "pnpm-lock.yaml",
  "pnpm-workspace.yaml",
  ".pnpmfile.cjs",
  "yarn.lock",
  ".yarnrc.yml",
  ".yarnrc",
  ".npmrc",
];
export const WORKSPACE_ROOT_DIRS = [".yarn/releases", ".yarn/plugins", ".yarn/patches", "patches"];

/** What `app.workspace` cannot be; the message starts with "app.workspace: ". */
export class WorkspaceError extends Error {}

/** The workspace globs of the root: pnpm-workspace.yaml's `packages`, else package.json's `workspaces`. */
export function workspacePatterns(packageJson: string | undefined, pnpmWorkspaceYaml?: string): string[] {
  if (pnpmWorkspaceYaml !== undefined) return pnpmPackages(pnpmWorkspaceYaml);
  if (packageJson === undefined) return [];
  let field: unknown;
  try {
    field = (JSON.parse(packageJson) as { workspaces?: unknown }).workspaces;
  } catch {
    throw new WorkspaceError("app.workspace: app.root's package.json is not valid JSON");
  }
  // Yarn 1 also takes `{ "packages": [...], "nohoist": [...] }`.
  const list =
    field && typeof field === "object" && !Array.isArray(field)
      ? (field as { packages?: unknown }).packages
      : field;
  return Array.isArray(list) ? list.filter((p): p is string => typeof p === "string") : [];
}

/** The `packages:` list of a pnpm-workspace.yaml (block or flow style; the only key read). */
export function pnpmPackages(yaml: string): string[] {
  const lines = yaml.split(/\r?\n/);
  const start = lines.findIndex((line) => /^packages\s*:/.test(line));
  if (start < 0) return [];
  const unquote = (value: string) => value.trim().replace(/^(["'])(.*)\1$/, "$2");
  const inline = (lines[start] as string)
    .replace(/^packages\s*:/, "")
    .replace(/\s+#.*$/, "")
    .trim();
  if (inline.startsWith("["))
    return inline
      .replace(/^\[|\]$/g, "")
      .split(",")
      .map(unquote)
      .filter(Boolean);
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    const item = /^\s+-\s*(.*?)\s*(#.*)?$/.exec(line);
    if (!item) break;
    out.push(unquote(item[1] as string));
  }
  return out;
}

/** A workspace glob (`apps/*`, `packages/**`, `{a,b}/*`) as a regular expression on a relative dir. */
export function globToRegExp(glob: string): RegExp {
  const clean = glob.replace(/^\.\//, "").replace(/\/+$/, "");
  let out = "";
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i] as string;
    if (c === "*" && clean[i + 1] === "*") {
      const slash = clean[i + 2] === "/";
      out += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "{") {
      const end = clean.indexOf("}", i);
      if (end < 0) out += "\\{";
      else {
        out += `(?:${clean
          .slice(i + 1, end)
          .split(",")
          .map((part) => part.replace(/[.+^$()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*"))
          .join("|")})`;
        i = end;
      }
    } else out += c.replace(/[.+^$()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

/** Whether a dir is one of the workspace's packages: matched by a glob and not by a later `!glob`. */
export function inWorkspace(patterns: readonly string[], dir: string): boolean {
  let inside = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith("!");
    if (globToRegExp(negated ? pattern.slice(1) : pattern).test(dir)) inside = !negated;
  }
  return inside;
}

/**
 * The package at `dir` and the workspace packages it depends on, transitively, through its
 * production dependencies: a `workspace:` spec, a `file:`/`link:` path to a package's directory,
 * or a name that is a workspace package's (npm and Yarn link those). `npm:` aliases are the
 * registry's. Sorted by dir.
 */
export function workspaceClosure(packages: readonly WorkspacePackage[], dir: string): WorkspacePackage[] {
  const byDir = new Map(packages.map((p) => [p.dir, p]));
  const byName = new Map(packages.filter((p) => p.name).map((p) => [p.name as string, p]));
  const seen = new Map<string, WorkspacePackage>();
  const visit = (pkg: WorkspacePackage | undefined) => {
    if (!pkg || seen.has(pkg.dir)) return;
    seen.set(pkg.dir, pkg);
    for (const [name, spec] of Object.entries(pkg.dependencies)) visit(localTarget(pkg, name, spec));
  };
  const localTarget = (from: WorkspacePackage, name: string, spec: string) => {
    if (spec.startsWith("npm:")) return undefined;
    if (spec.startsWith("workspace:")) {
      // `workspace:*`, `workspace:^1.0.0`, or an alias `workspace:@scope/other@*`.
      const alias = /^workspace:((?:@[^/@]+\/)?[^@]+)@/.exec(spec)?.[1];
      return byName.get(alias ?? name);
    }
    const local = /^(?:file|link):(.*)$/.exec(spec)?.[1];
    if (local !== undefined) return byDir.get(path.posix.normalize(path.posix.join(from.dir, local)));
    return byName.get(name);
  };
  visit(byDir.get(dir));
  return [...seen.values()].sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
}

/**
 * `file:` dependencies of the closure's packages that are not inside one of its packages but
 * inside the root (a tarball in a shared `vendor/`): they must ship for the install to find them.
 */
export function fileDependencies(closure: readonly WorkspacePackage[]): string[] {
  const dirs = closure.map((p) => p.dir);
  const out = new Set<string>();
  for (const pkg of closure) {
    for (const spec of Object.values(pkg.dependencies)) {
      const local = /^file:(.*)$/.exec(spec)?.[1];
      if (local === undefined) continue;
      const target = path.posix.normalize(path.posix.join(pkg.dir, local));
      if (target === ".." || target.startsWith("../") || path.posix.isAbsolute(target)) continue;
      if (dirs.some((d) => target === d || target.startsWith(`${d}/`))) continue;
      out.add(target);
    }
  }
  return [...out].sort();
}

/** Directories never searched for workspace packages. */
const SKIPPED = new Set(["node_modules", ".git", ".nexus"]);

/**
 * Every directory under the root (not the root) holding a package.json that a pattern may match,
 * up to a few levels deep: only below each pattern's literal prefix (`apps/*`: in apps/), so a
 * large repository is not walked whole.
 */
function packageDirs(root: string, patterns: readonly string[], maxDepth = 6): string[] {
  const out = new Set<string>();
  const hasPackage = (dir: string) =>
    statSync(path.join(root, dir, "package.json"), { throwIfNoEntry: false })?.isFile() ?? false;
  const walk = (rel: string, depth: number) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory() || SKIPPED.has(entry.name)) continue;
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (hasPackage(child)) out.add(child);
      if (depth < maxDepth) walk(child, depth + 1);
    }
  };
  const bases = new Set(
    patterns
      .filter((p) => !p.startsWith("!"))
      .map((p) => {
        const parts = p.replace(/^\.\//, "").replace(/\/+$/, "").split("/");
        const glob = parts.findIndex((part) => /[*?{[]/.test(part));
        return (glob < 0 ? parts : parts.slice(0, glob)).join("/");
      }),
  );
  for (const base of bases) {
    // A pattern without a glob ("web") names the package's directory itself.
    if (base && hasPackage(base)) out.add(base);
    walk(base, base ? base.split("/").length + 1 : 1);
  }
  return [...out].sort();
}

function readPackage(root: string, dir: string): WorkspacePackage {
  const file = path.join(root, dir, "package.json");
  let data: { name?: unknown; dependencies?: unknown; optionalDependencies?: unknown };
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    throw new WorkspaceError(`app.workspace: ${dir}/package.json is not valid JSON`);
  }
  const deps = (field: unknown) =>
    field && typeof field === "object"
      ? Object.fromEntries(
          Object.entries(field).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
        )
      : {};
  return {
    dir,
    ...(typeof data.name === "string" && data.name ? { name: data.name } : {}),
    dependencies: { ...deps(data.dependencies), ...deps(data.optionalDependencies) },
  };
}

const readText = (file: string) => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/**
 * Reads `dir` as a package of the workspace at `root` (both checked: the directory exists inside
 * the root, holds a package.json with a name, and is one of the root's workspaces), and its
 * closure. Throws WorkspaceError naming app.workspace.
 */
export function resolveWorkspace(root: string, dir: string): Workspace {
  const full = path.join(root, dir);
  const info = statSync(full, { throwIfNoEntry: false });
  if (!info?.isDirectory())
    throw new WorkspaceError(`app.workspace: ${dir} is not a directory in app.root (${root})`);
  const realRoot = realpathSync(root);
  const inside = path.relative(realRoot, realpathSync(full));
  if (inside === "" || inside.startsWith("..") || path.isAbsolute(inside))
    throw new WorkspaceError(`app.workspace: ${dir} leads outside app.root (${root}) through a symlink`);
  if (!statSync(path.join(full, "package.json"), { throwIfNoEntry: false })?.isFile())
    throw new WorkspaceError(`app.workspace: ${dir} holds no package.json`);
  const pnpmYaml = readText(path.join(root, "pnpm-workspace.yaml"));
  const patterns = workspacePatterns(readText(path.join(root, "package.json")), pnpmYaml);
  if (patterns.length === 0)
    throw new WorkspaceError(
      `app.workspace: app.root (${root}) is not a workspace root: it has no pnpm-workspace.yaml and its package.json no "workspaces" (app.root is the workspace's root, app.workspace the package's directory in it)`,
    );
  const source = pnpmYaml !== undefined ? "pnpm-workspace.yaml" : 'package.json "workspaces"';
  if (!inWorkspace(patterns, dir))
    throw new WorkspaceError(
      `app.workspace: ${dir} is not one of the root's workspaces (${source}: ${patterns.join(", ")})`,
    );
  const packages = packageDirs(root, patterns)
    .filter((d) => inWorkspace(patterns, d))
    .map((d) => readPackage(root, d));
  const own = packages.find((p) => p.dir === dir) ?? readPackage(root, dir);
  if (!own.name)
    throw new WorkspaceError(
      `app.workspace: ${dir}/package.json has no "name" (the package managers' workspace filters select a package by it)`,
    );
  const closure = workspaceClosure(packages.some((p) => p.dir === dir) ? packages : [...packages, own], dir);
  return { dir, name: own.name, dirs: closure.map((p) => p.dir), extras: fileDependencies(closure) };
}

const resolved = new WeakMap<object, Workspace | undefined>();

/** The config's workspace, read once per config; a ConfigError (exit 2) naming app.workspace. */
export function workspaceOf(config: Pick<Config, "app" | "file">): Workspace | undefined {
  if (resolved.has(config.app)) return resolved.get(config.app);
  const dir = config.app.workspace;
  let workspace: Workspace | undefined;
  if (dir !== undefined) {
    try {
      workspace = resolveWorkspace(config.app.root, dir);
    } catch (error) {
      if (error instanceof WorkspaceError) throw new ConfigError(config.file, [error.message]);
      throw error;
    }
  }
  resolved.set(config.app, workspace);
  return workspace;
}

/** What ships of a workspace root: its manifests' files, and the closure's directories. */
export function workspaceScope(workspace: Workspace): { files: string[]; dirs: string[] } {
  return {
    files: [...WORKSPACE_ROOT_FILES, ...workspace.extras],
    dirs: [...workspace.dirs, ...WORKSPACE_ROOT_DIRS, ...workspace.extras],
  };
}
