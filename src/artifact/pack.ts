import { createHash } from "node:crypto";
import { createWriteStream, realpathSync } from "node:fs";
import { lstat, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import { ArtifactFilter, IGNORE_FILES } from "./exclude.js";

/**
 * The app's selection options from its config. The config file itself is left out when it sits
 * in the app (its env values are in plain text, and a release is world-readable on the server);
 * `app.include` can still name it.
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
  return { exclude: [...own, ...config.app.exclude], include: config.app.include };
}

/** app.root must be a directory: a config error (exit 2, the field named) otherwise. */
export async function assertAppRoot(config: Pick<Config, "app" | "file">): Promise<void> {
  if (!(await stat(config.app.root).catch(() => undefined))?.isDirectory())
    throw new ConfigError(config.file, [`app.root: ${config.app.root} is not a directory`]);
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
      const decision = filter.decide(rel, entry.isDirectory());
      if (!decision.ship) continue;
      if (entry.isDirectory()) {
        await walk(rel);
        continue;
      }
      if (!entry.isFile() && !entry.isSymbolicLink()) continue; // sockets, fifos: nothing to ship
      const size = entry.isFile() ? (await lstat(path.join(root, rel))).size : 0;
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
  return { files, bytes: files.reduce((sum, f) => sum + f.size, 0), warnings };
}

/**
 * Packs the app's files (selectAppFiles) into a gzip tarball in a temp dir, streaming: the archive is
 * hashed as it is written and never held whole in memory.
 */
export async function packApp(root: string, options: PackOptions = {}): Promise<Artifact> {
  const selection = await selectAppFiles(root, options);
  if (selection.files.length === 0) throw new Error(`app.root ${root}: no file to ship (all excluded)`);
  for (const warning of selection.warnings) options.warn?.(warning);
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
