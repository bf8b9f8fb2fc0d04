import { createHash } from "node:crypto";
import { createWriteStream, realpathSync } from "node:fs";
import { lstat, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import { ArtifactFilter, IGNORE_FILES, NEXUS_CONFIG_NAME } from "./exclude.js";
import { workspaceOf, workspaceScope } from "./workspace.js";

/**
 * The app's selection options from its config. The config file itself is left out when it sits
 * in the app (its env values are in plain text, and a release is world-readable on the server);
 * `app.include` can still name it. Other nexus configs are left out by `selectAppFiles`.
 */
export function appPackOptions(config: Pick<Config, "app" | "file">): PackOptions {
  const real = (file: string) => {
    try {
      return realpathSync(file);
    } catch {
      return path.resolve(file);
    }
  };
  const inApp = path.relative(real(config.app.root), real(config.file));
  const outside = inApp === ".." || inApp.startsWith(`..${path.sep}`) || path.isAbsolute(inApp);
  const own =
    inApp && !outside
      ? [
          `/${inApp
            .split(path.sep)
            .join("/")
            .replace(/[*?[\]\\]/g, "\\$&")}`,
        ]
      : [];
  const workspace = workspaceOf(config);
  return {
    exclude: [...own, ...config.app.exclude],
    include: config.app.include,
    ...(workspace ? { scope: workspaceScope(workspace) } : {}),
  };
}

/**
 * app.root must be a directory, and app.workspace one of its workspaces: a config error (exit 2,
 * the field named) otherwise.
 */
export async function assertAppRoot(config: Pick<Config, "app" | "file">): Promise<void> {
  if (!(await stat(config.app.root).catch(() => undefined))?.isDirectory())
    throw new ConfigError(config.file, [`app.root: ${config.app.root} is not a directory`]);
  workspaceOf(config);
}

/** What the config's app ships (`nexus pack --list`, `deploy --dry-run`). */
export async function selectConfiguredApp(config: Pick<Config, "app" | "file">): Promise<AppSelection> {
  await assertAppRoot(config);
  return selectAppFiles(config.app.root, appPackOptions(config));
}

export interface Artifact {
  file: string;
  sha256: string;
  bytes: number;
  files: number;
  /** Removes the temporary directory holding the file. */
  dispose(): Promise<void>;
}

export interface PackOptions {
  /** app.exclude: gitignore-style patterns left out on top of the app's .gitignore/.nexusignore files. */
  exclude?: readonly string[];
  /** app.include: gitignore-style patterns shipped even when excluded (.env*, .npmrc, logs, ignored files). */
  include?: readonly string[];
  /** Told about every shipped file that looks like a secret. */
  warn?: (message: string) => void;
  /** Told about every file left out because it is a nexus config. */
  inform?: (message: string) => void;
  /**
   * A workspace package (app.workspace): only these ship, the rules above still applied: `files`
   * (paths from the root) and whatever is inside `dirs`; no other directory is entered.
   */
  scope?: { files: readonly string[]; dirs: readonly string[] };
}

export interface AppFile {
  /** Relative to the app root, "/"-separated. */
  path: string;
  /** Bytes on disk (0 for a symlink). */
  size: number;
}

export interface AppSelection {
  files: AppFile[];
  /** Uncompressed bytes of all files. */
  bytes: number;
  warnings: string[];
  /** Files that would ship but are nexus configs (another environment's, with its env values). */
  leftOut: AppFile[];
}

/** A nexus config is small: larger JSON files (data, lockfiles) are not read to find out. */
const CONFIG_MAX_BYTES = 256 * 1024;

/**
 * Whether a file in the app is a nexus config: named by the environments convention
 * (`deploy.config.json`, `deploy.<name>.json`), or a JSON object with nexus's required fields
 * (`servers` and `balancer`), whatever its name (`nexus init -o deploy/staging.json`).
 */
export async function isNexusConfig(file: string, name: string, size: number): Promise<boolean> {
  if (NEXUS_CONFIG_NAME.test(name)) return true;
  if (!name.endsWith(".json") || size > CONFIG_MAX_BYTES) return false;
  const text = await readFile(file, "utf8").catch(() => "");
  if (!text.includes('"servers"') || !text.includes('"balancer"')) return false;
  try {
    const data = JSON.parse(text) as Record<string, unknown> | null;
    return (
      typeof data === "object" &&
      data !== null &&
      Array.isArray(data.servers) &&
      typeof data.balancer === "object" &&
      data.balancer !== null
    );
  } catch {
    return false;
  }
}

/** One line for people about the configs left out (pack, deploy). */
export function describeLeftOut(leftOut: readonly AppFile[]): string | undefined {
  if (leftOut.length === 0) return undefined;
  return `left out ${leftOut.length} nexus config file(s), whose env values are in plain text: ${leftOut.map((f) => f.path).join(", ")} (app.include ships one anyway)`;
}

/**
 * Walks the app root and returns what ships, in a stable order: the app's .gitignore and
 * .nexusignore files (nested too), app.exclude and app.include applied; excluded directories are not
 * entered.
 */
export async function selectAppFiles(root: string, options: PackOptions = {}): Promise<AppSelection> {
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`app.root ${root} is not a directory`);
  const filter = new ArtifactFilter(options);
  const files: AppFile[] = [];
  const warnings: string[] = [];
  const leftOut: AppFile[] = [];

  const walk = async (dir: string): Promise<void> => {
    const full = path.join(root, dir);
    for (const name of IGNORE_FILES) {
      const text = await readFile(path.join(full, name), "utf8").catch(() => undefined);
      if (text !== undefined) filter.addIgnoreFile(dir, text, name);
    }
    const entries = (await readdir(full, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const entry of entries) {
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (options.scope && !inScope(options.scope, rel, entry.isDirectory())) continue;
      const decision = filter.decide(rel, entry.isDirectory());
      if (!decision.ship) continue;
      if (entry.isDirectory()) {
        await walk(rel);
        continue;
      }
      if (!entry.isFile() && !entry.isSymbolicLink()) continue; // sockets, fifos: nothing to ship
      const size = entry.isFile() ? (await lstat(path.join(root, rel))).size : 0;
      if (entry.isFile() && (await isNexusConfig(path.join(root, rel), entry.name, size))) {
        if (!filter.namedByInclude(rel)) {
          leftOut.push({ path: rel, size });
          continue;
        }
        warnings.push(`${rel} is a nexus config and ships because app.include names it`);
      }
      files.push({ path: rel, size });
      if (filter.looksSecret(rel)) {
        warnings.push(
          decision.explicit
            ? `${rel} looks like a secret and ships because app.include names it`
            : `${rel} looks like a secret and ships to every server (add it to .gitignore, .nexusignore or app.exclude if it should not)`,
        );
      }
    }
  };
  await walk("");
  return { files, bytes: files.reduce((sum, f) => sum + f.size, 0), warnings, leftOut };
}

/** Whether a path is part of a workspace scope: a directory on the way to one of its dirs counts. */
export function inScope(
  scope: NonNullable<PackOptions["scope"]>,
  rel: string,
  isDirectory: boolean,
): boolean {
  if (scope.dirs.some((d) => rel === d || rel.startsWith(`${d}/`))) return true;
  if (isDirectory) return scope.dirs.some((d) => d.startsWith(`${rel}/`));
  return scope.files.includes(rel);
}

/**
 * Packs the app's files (selectAppFiles) into a gzip tarball in a temp dir, streaming: the archive is
 * hashed as it is written and never held whole in memory.
 */
export async function packApp(root: string, options: PackOptions = {}): Promise<Artifact> {
  const selection = await selectAppFiles(root, options);
  if (selection.files.length === 0) throw new Error(`app.root ${root}: no file to ship (all excluded)`);
  for (const warning of selection.warnings) options.warn?.(warning);
  const leftOut = describeLeftOut(selection.leftOut);
  if (leftOut) options.inform?.(leftOut);
  const dir = await mkdtemp(path.join(os.tmpdir(), "nexus-artifact-"));
  const file = path.join(dir, "release.tar.gz");
  try {
    const { sha256, bytes } = await writeTarball(root, selection.files, file);
    return {
      file,
      sha256,
      bytes,
      files: selection.files.length,
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Writes the listed files of `root` as a gzip tarball to `file`; returns its sha256 and size. */
export async function writeTarball(
  root: string,
  files: readonly AppFile[],
  file: string,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  // Loaded here, not at start-up: only packing needs it.
  const tar = await import("tar");
  const stream = tar.create(
    {
      cwd: root,
      gzip: { level: 6 },
      portable: true,
      // Fewer, smaller reads in flight keep the CLI's memory flat on big apps, at no cost in speed
      // (node-tar would otherwise read files of up to 16 MB whole, 4 at a time).
      jobs: 2,
      maxReadSize: 1024 * 1024,
      noDirRecurse: true,
    },
    files.map((f) => f.path),
  );
  await pipeline(stream, hashing, createWriteStream(file));
  return { sha256: hash.digest("hex"), bytes };
}
