import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config/load.js";
import { UsageError } from "../errors.js";
import { workspaceOf } from "./workspace.js";

/** Which package manager installs the app's dependencies on the servers, and how. */

export type PackageManagerName = "npm" | "pnpm" | "yarn";

export interface PackageManager {
  name: PackageManagerName;
  /** Yarn 1 ("classic") or Yarn 2+ ("berry"): their install flags differ. */
  flavor?: "classic" | "berry";
  /** The version `packageManager` in package.json pins ("9.12.0"), if any. */
  pinned?: string;
  /** The lockfile the install is frozen to, relative to the app root; none: npm install. */
  lockfile?: string;
  /** The install's arguments after the binary's name: frozen to the lockfile, production only. */
  args: string[];
  /** Said in the stage line and by `nexus check`: "pnpm (pnpm-lock.yaml)". */
  label: string;
  /**
   * app.workspace: the install is filtered to this package (`dir`, `name`); `dirs` are the
   * workspace packages shipped with it, whose node_modules a reuse links too.
   */
  workspace?: { dir: string; name: string; dirs: string[] };
}

const LOCKFILES: [string, PackageManagerName][] = [
  ["package-lock.json", "npm"],
  ["npm-shrinkwrap.json", "npm"],
  ["pnpm-lock.yaml", "pnpm"],
  ["yarn.lock", "yarn"],
];

const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

/** What the detection reads from the app root (kept apart from the disk so it can be tested pure). */
export interface PackageFiles {
  /** package.json's text; undefined: the app has none (nothing to install). */
  packageJson?: string;
  /** Lockfile names present in the app root. */
  lockfiles: string[];
  /** A .yarnrc.yml is present (Yarn 2+). */
  yarnrcYml?: boolean;
  /** .yarnrc.yml's text (its plugins and yarnPath tell what a Yarn 2+ install can do). */
  yarnrcText?: string;
  /** yarn.lock's first lines, when present: Yarn 2+ writes `__metadata:`. */
  yarnLockHead?: string;
}

export function readPackageFiles(root: string): PackageFiles {
  const read = (name: string) => {
    try {
      return readFileSync(path.join(root, name), "utf8");
    } catch {
      return undefined;
    }
  };
  const lockfiles = LOCKFILES.map(([name]) => name).filter((name) => existsSync(path.join(root, name)));
  return {
    packageJson: read("package.json"),
    lockfiles,
    yarnrcYml: existsSync(path.join(root, ".yarnrc.yml")),
    yarnrcText: read(".yarnrc.yml"),
    yarnLockHead: lockfiles.includes("yarn.lock") ? read("yarn.lock")?.slice(0, 2000) : undefined,
  };
}

/** The package manager of the config's app (the workspace root's, filtered to app.workspace). */
export function appPackageManager(config: Pick<Config, "app" | "file">): PackageManager | undefined {
  return detectPackageManager(readPackageFiles(config.app.root), workspaceOf(config));
}

/** The package to install within a workspace root (app.workspace). */
export interface WorkspaceTarget {
  dir: string;
  name: string;
  dirs: string[];
}

/**
 * The app's package manager, or undefined when it has no package.json. With a `workspace`, the
 * root's files are read and the install is the workspace-filtered one.
 */
export function detectPackageManager(
  files: PackageFiles,
  workspace?: WorkspaceTarget,
): PackageManager | undefined {
  if (files.packageJson === undefined) return undefined;
  const declared = declaredManager(files.packageJson);
  const found = files.lockfiles.map(
    (file) => LOCKFILES.find(([name]) => name === file) as [string, PackageManagerName],
  );
  let name: PackageManagerName;
  if (declared) name = declared.name;
  else {
    const names = [...new Set(found.map(([, n]) => n))];
    if (names.length > 1)
      throw new UsageError(
        `the app holds lockfiles of ${names.join(" and ")} (${files.lockfiles.join(", ")}): remove the stale one, or name the manager in package.json ("packageManager": "pnpm@9.12.0")`,
      );
    name = names[0] ?? "npm";
  }
  const lockfile = found.find(([, n]) => n === name)?.[0];
  if (!lockfile && name !== "npm")
    throw new UsageError(
      `package.json names ${name} ("packageManager"), but the app has no ${name === "pnpm" ? "pnpm-lock.yaml" : "yarn.lock"}: nexus installs ${name} dependencies from a lockfile only (run \`${name} install\` and commit it)`,
    );
  const pinned = declared?.version;
  const flavor =
    name !== "yarn"
      ? undefined
      : (pinned && Number(pinned.split(".")[0]) >= 2) ||
          files.yarnrcYml ||
          files.yarnLockHead?.includes("__metadata:")
        ? "berry"
        : "classic";
  if (workspace && !lockfile)
    throw new UsageError(
      `app.workspace: the workspace root has no lockfile (package-lock.json, pnpm-lock.yaml or yarn.lock): nexus installs a workspace package from the root's lockfile only`,
    );
  if (workspace && flavor === "berry" && !yarnFocusAvailable(pinned, files.yarnrcText))
    throw new UsageError(
      `app.workspace: Yarn ${pinned ?? "2+"} installs one workspace with \`yarn workspaces focus\`, a command of the workspace-tools plugin (built into Yarn 4): run \`yarn plugin import workspace-tools\` and commit .yarnrc.yml and .yarn/plugins, or pin Yarn 4 ("packageManager": "yarn@4.x.y")`,
    );
  const args = workspace
    ? workspaceInstallArgs(name, flavor, workspace.name)
    : installArgs(name, flavor, lockfile !== undefined);
  const label = `${name}${pinned ? ` ${pinned}` : ""}${flavor === "berry" ? " (berry)" : ""}${lockfile ? `, ${lockfile}` : ", no lockfile"}${workspace ? `, workspace ${workspace.dir}` : ""}`;
  return {
    name,
    ...(flavor ? { flavor } : {}),
    ...(pinned ? { pinned } : {}),
    ...(lockfile ? { lockfile } : {}),
    args,
    label,
    ...(workspace ? { workspace: { dir: workspace.dir, name: workspace.name, dirs: workspace.dirs } } : {}),
  };
}

/**
 * Yarn 2+'s `workspaces focus` comes with the workspace-tools plugin: built into Yarn 4, imported
 * into .yarnrc.yml's `plugins` before. The version is the pinned one, else the one `yarnPath` names.
 */
export function yarnFocusAvailable(pinned: string | undefined, yarnrc: string | undefined): boolean {
  if (yarnrc && /plugin-workspace-tools|workspace-tools/.test(yarnrc)) return true;
  const version = pinned ?? /yarnPath:.*yarn-(\d+)\.[^/]*\.c?js/.exec(yarnrc ?? "")?.[1];
  return version !== undefined && Number(version.split(".")[0]) >= 4;
}

/**
 * The install of one package of a workspace (and the workspace packages it depends on), from the
 * root's lockfile, production dependencies only. The artifact holds only those packages: Yarn 1,
 * which has no filtered install, installs what it finds.
 */
export function workspaceInstallArgs(
  name: PackageManagerName,
  flavor: "classic" | "berry" | undefined,
  pkg: string,
): string[] {
  switch (name) {
    case "npm":
      return ["ci", "--workspace", pkg, "--include-workspace-root=false", "--omit=dev", ...NPM_QUIET];
    case "pnpm":
      return [
        "install",
        "--frozen-lockfile",
        "--prod",
        "--filter",
        `${pkg}...`,
        "--prefer-offline",
        "--reporter=silent",
      ];
    case "yarn":
      return flavor === "berry"
        ? ["workspaces", "focus", "--production", pkg]
        : installArgs("yarn", "classic", true);
  }
}

/** `packageManager: "pnpm@9.12.0+sha512.…"` → pnpm, 9.12.0; anything else is refused by name. */
function declaredManager(packageJson: string): { name: PackageManagerName; version: string } | undefined {
  let field: unknown;
  try {
    field = (JSON.parse(packageJson) as { packageManager?: unknown }).packageManager;
  } catch {
    throw new UsageError("package.json is not valid JSON");
  }
  if (field === undefined) return undefined;
  const match =
    typeof field === "string" ? /^(npm|pnpm|yarn)@(\d+\.\d+\.\d+[0-9A-Za-z.-]*)(\+.*)?$/.exec(field) : null;
  if (!match)
    throw new UsageError(
      `package.json: packageManager ${JSON.stringify(field)} is not one nexus installs with: expected "npm@X.Y.Z", "pnpm@X.Y.Z" or "yarn@X.Y.Z"`,
    );
  return { name: match[1] as PackageManagerName, version: match[2] as string };
}

function installArgs(
  name: PackageManagerName,
  flavor: "classic" | "berry" | undefined,
  locked: boolean,
): string[] {
  switch (name) {
    case "npm":
      return [locked ? "ci" : "install", "--omit=dev", ...NPM_QUIET];
    case "pnpm":
      return ["install", "--frozen-lockfile", "--prod", "--prefer-offline", "--reporter=silent"];
    case "yarn":
      // Yarn 2+ has no production-only install (`yarn workspaces focus --production` is a plugin's).
      return flavor === "berry"
        ? ["install", "--immutable"]
        : [
            "install",
            "--frozen-lockfile",
            "--production",
            "--non-interactive",
            "--prefer-offline",
            "--silent",
          ];
  }
}
