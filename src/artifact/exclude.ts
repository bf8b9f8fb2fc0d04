import ignore, { type Ignore } from "ignore";

/** Never shipped, whatever the config says: dependencies are installed on the server; VCS and nexus data stay home. */
export const NEVER_SHIPPED = ["node_modules", ".git", ".nexus"];

/**
 * Left out unless `app.include` names them: logs, OS litter, and files that usually hold secrets.
 * `/logs` is the root's log directory only (or a symlink there: to /var/log, which extraction
 * would refuse): a `src/api/logs/` route module ships.
 */
export const DEFAULT_EXCLUDED = ["/logs", "*.log", ".DS_Store", ".env*", ".npmrc"];

/** A shipped file with one of these names gets a warning: it may carry a secret to every server. */
export const SECRET_LOOKING = [".env*", "*.pem", "*.key", "id_*", ".npmrc"];

/**
 * Names of nexus config files by the environments convention (Kamal's): `deploy.config.json` and
 * `deploy.<destination>.json` (a destination's overlay, partial, so not recognisable by content).
 */
export const NEXUS_CONFIG_NAME = /^deploy\.[^/]+\.json$/;

/** Files read in every directory of the app, with gitignore semantics (the later overrides the earlier). */
export const IGNORE_FILES = [".gitignore", ".nexusignore"];

export interface Decision {
  ship: boolean;
  /** Shipped because `app.include` names it (it would be left out otherwise). */
  explicit?: boolean;
}

interface Level {
  /** Directory the rules are relative to ("" for the app root). */
  dir: string;
  rules: Ignore;
  /** The ignore file, relative to the app root (for `explain`). */
  source: string;
}

/**
 * Decides which paths of an app ship, with gitignore semantics (the `ignore` package: `**`,
 * anchoring, `!negation`, directory-only patterns). Rules are checked root first, then each nested
 * ignore file, then `app.exclude`; the last rule that matches wins, as in git. The walker must not
 * descend into a directory that does not ship: as in git, a file cannot be re-included when its
 * parent directory itself is excluded. `app.include` overrides everything but NEVER_SHIPPED.
 */
export class ArtifactFilter {
  private readonly levels: Level[] = [];
  private readonly excludes: Ignore;
  private readonly includes: Ignore;
  private readonly defaults = ignore().add(DEFAULT_EXCLUDED);
  private readonly secrets = ignore().add(SECRET_LOOKING);
  private readonly hasIncludes: boolean;

  constructor(options: { exclude?: readonly string[]; include?: readonly string[] } = {}) {
    this.excludes = ignore().add([...(options.exclude ?? [])]);
    this.includes = ignore().add([...(options.include ?? [])]);
    this.hasIncludes = (options.include ?? []).length > 0;
  }

  /** Adds the rules of an ignore file found in `dir` (relative to the app root, "" for the root). */
  addIgnoreFile(dir: string, text: string, name = ".gitignore"): void {
    const at = clean(dir);
    this.levels.push({ dir: at, rules: ignore().add(text), source: at ? `${at}/${name}` : name });
  }

  /**
   * Why a path that does not ship is left out: the rule that decides, as `git check-ignore -v`
   * would name it ("`dist/` in .gitignore"); undefined when it ships.
   */
  explain(relativePath: string, isDirectory: boolean): string | undefined {
    const rel = clean(relativePath);
    if (this.decide(rel, isDirectory).ship) return undefined;
    const never = rel.split("/").find((segment) => NEVER_SHIPPED.includes(segment));
    if (never) return `${never} is never shipped`;
    const asked = isDirectory ? `${rel}/` : rel;
    let reason: string | undefined;
    for (const level of this.levels) {
      if (level.dir !== "" && !rel.startsWith(`${level.dir}/`)) continue;
      const verdict = level.rules.test(level.dir === "" ? asked : asked.slice(level.dir.length + 1));
      if (verdict.ignored) reason = `\`${verdict.rule?.pattern}\` in ${level.source}`;
      else if (verdict.unignored) reason = undefined;
    }
    const verdict = this.excludes.test(asked);
    if (verdict.ignored) reason = `\`${verdict.rule?.pattern}\` in app.exclude`;
    else if (verdict.unignored) reason = undefined;
    if (reason) return reason;
    const byDefault = this.defaults.test(asked);
    return byDefault.ignored ? `\`${byDefault.rule?.pattern}\`, left out by default` : "an exclusion rule";
  }

  decide(relativePath: string, isDirectory: boolean): Decision {
    const rel = clean(relativePath);
    if (rel === "") return { ship: true };
    if (rel.split("/").some((segment) => NEVER_SHIPPED.includes(segment))) return { ship: false };
    const asked = isDirectory ? `${rel}/` : rel;
    const excluded = this.excludedByRules(rel, asked) || this.defaults.ignores(asked);
    if (excluded && this.hasIncludes && this.includes.ignores(asked)) return { ship: true, explicit: true };
    return { ship: !excluded };
  }

  /** True when `app.include` names this path: it ships even where nexus would leave it out. */
  namedByInclude(relativePath: string): boolean {
    return this.hasIncludes && this.includes.ignores(clean(relativePath));
  }

  /** True when a file with this path may carry a secret (.env*, *.pem, id_*, ...). */
  looksSecret(relativePath: string): boolean {
    return this.secrets.ignores(clean(relativePath));
  }

  private excludedByRules(rel: string, asked: string): boolean {
    let excluded = false;
    for (const level of this.levels) {
      if (level.dir !== "" && !rel.startsWith(`${level.dir}/`)) continue;
      const inner = level.dir === "" ? asked : asked.slice(level.dir.length + 1);
      const verdict = level.rules.test(inner);
      if (verdict.ignored) excluded = true;
      else if (verdict.unignored) excluded = false;
    }
    const verdict = this.excludes.test(asked);
    if (verdict.ignored) excluded = true;
    else if (verdict.unignored) excluded = false;
    return excluded;
  }
}

function clean(relativePath: string): string {
  return relativePath.replace(/^(\.\/+)+/, "").replace(/\/+$/, "");
}
