import { readFileSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import type { Config } from "../config/load.js";
import { parseStart, type StartCommand, StartError, startProblems } from "./start.js";

const read = new WeakMap<object, StartCommand>();

/**
 * app.start, read from the app root (its package.json when it names a package script): a config
 * error (exit 2) naming app.start when nexus cannot run it without a shell. Read once per config.
 */
export function readStart(config: Pick<Config, "app" | "file">): StartCommand {
  const cached = read.get(config.app);
  if (cached) return cached;
  const { start: spec, root, workspace } = config.app;
  let packageJson: string | undefined;
  if (/^(?:script|npm):/.test(spec)) {
    try {
      // A workspace package's own scripts (app.workspace): its process runs in its directory.
      packageJson = readFileSync(path.join(root, workspace ?? "", "package.json"), "utf8");
    } catch {}
  }
  let start: StartCommand;
  try {
    start = parseStart(spec, packageJson);
  } catch (error) {
    if (error instanceof StartError) throw new ConfigError(config.file, [error.message]);
    throw error;
  }
  read.set(config.app, start);
  return start;
}

/** readStart, and the command's variables checked against every server's app environment. */
export function startOf(config: Pick<Config, "app" | "file" | "servers">): StartCommand {
  const start = readStart(config);
  const problems = startProblems(start, config.servers);
  if (problems.length > 0) throw new ConfigError(config.file, problems);
  return start;
}
