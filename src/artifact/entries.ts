import { statSync } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import { readStart } from "../start/load.js";
import { nodeCandidates } from "../start/start.js";
import { ArtifactFilter, IGNORE_FILES } from "./exclude.js";
import { appPackOptions, inScope, type PackOptions } from "./pack.js";

/**
 * The files PM2 runs: `app.start` (or the file its package script runs with node; a dependency's
 * binary is installed on the servers, not shipped), and a script path among `pm2.options.args`
 * (a launcher's argument). `node dist/main` runs the first of dist/main, dist/main.js, … that
 * exists (dist/main.js when none does yet).
 */
export function entryFiles(config: Pick<Config, "app" | "pm2" | "file">): { field: string; file: string }[] {
  const start = readStart(config);
  const entries: { field: string; file: string }[] = [];
  // With app.workspace, the process runs in the package's directory: its paths are relative to it.
  const dir = config.app.workspace ?? "";
  if (!("bin" in start.run)) {
    const candidates = nodeCandidates(start.run.file);
    const file = start.run.node
      ? (candidates.find((c) => isFile(path.join(config.app.root, dir, c))) ??
        candidates[1] ??
        start.run.file)
      : start.run.file;
    entries.push({
      field: start.script ? `app.start (the script "${start.script.name}")` : "app.start",
      file,
    });
  }
  const args = config.pm2.options.args;
  const list = args === undefined ? [] : Array.isArray(args) ? args : args.split(/\s+/);
  list.forEach((arg, i) => {
    if (/^[^-].*\.(c|m)?[jt]sx?$/.test(arg) && !path.isAbsolute(arg)) {
      entries.push({ field: Array.isArray(args) ? `pm2.options.args[${i}]` : "pm2.options.args", file: arg });
    }
  });
  return entries
    .filter((e) => !path.isAbsolute(e.file))
    .map((e) => (dir ? { ...e, file: path.posix.join(dir, e.file.split(path.sep).join("/")) } : e));
}

function isFile(file: string): boolean {
  return statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * Why `file` (relative to the app root) would not be in the artifact, or undefined when it ships:
 * the rule that leaves it or one of its directories out. Only the ignore files on its way are read.
 */
export async function whyLeftOut(
  root: string,
  file: string,
  options: Pick<PackOptions, "exclude" | "include" | "scope">,
): Promise<string | undefined> {
  const filter = new ArtifactFilter(options);
  const parts = path.posix.normalize(file.split(path.sep).join("/")).replace(/^\.\//, "").split("/");
  if (parts[0] === "..") return "it is outside app.root";
  if (options.scope && !inScope(options.scope, parts.join("/"), false))
    return "it is outside app.workspace's package and the workspace packages it depends on";
  for (let depth = 0; depth < parts.length; depth++) {
    const dir = parts.slice(0, depth).join("/");
    for (const name of IGNORE_FILES) {
      const text = await readFile(path.join(root, dir, name), "utf8").catch(() => undefined);
      if (text !== undefined) filter.addIgnoreFile(dir, text, name);
    }
    const rel = parts.slice(0, depth + 1).join("/");
    const reason = filter.explain(rel, depth < parts.length - 1);
    if (reason) {
      const leavesOutDir = depth < parts.length - 1 && !reason.endsWith("never shipped");
      return leavesOutDir ? `${reason} leaves out ${rel}/` : reason;
    }
  }
  return undefined;
}

/**
 * Every entry file must ship, or every server's gate fails after the drain: a config error (exit
 * 2) naming the field, the rule that left it out and `app.include`. `built`: the build has run
 * (or there is none), so the file must also exist.
 */
export async function assertEntriesShip(
  config: Pick<Config, "app" | "pm2" | "file">,
  { built }: { built: boolean },
): Promise<void> {
  const options = appPackOptions(config);
  const problems: string[] = [];
  for (const { field, file } of entryFiles(config)) {
    const reason = await whyLeftOut(config.app.root, file, options);
    const bin = /^(?:\.\/)?node_modules\/\.bin\/([^/]+)$/.exec(file)?.[1];
    if (reason && field === "app.start" && bin) {
      problems.push(
        `app.start: ${file} is installed on each server, never shipped: write "bin:${bin}" (nexus runs the JS file of the dependency's binary)`,
      );
      continue;
    }
    if (reason) {
      problems.push(
        `${field}: ${file} is not in the artifact (${reason}): list it in app.include (e.g. "include": ["${file.replace(/\/[^/]*$/, "/") || file}"]), or build it on the servers`,
      );
      continue;
    }
    if (built && !(await lstat(path.join(config.app.root, file)).catch(() => undefined))) {
      problems.push(
        `${field}: ${file} does not exist in app.root (${config.app.root})${config.app.build ? "" : ": build it first, or set app.build"}`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(config.file, problems);
}
