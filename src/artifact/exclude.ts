/** Always left out of an artifact: dependencies are installed on the server, logs and VCS data never ship. */
export const ALWAYS_EXCLUDED = ["node_modules", ".git", "logs", "*.log", ".nexus", ".DS_Store"];

/**
 * gitignore-like patterns: a pattern without "/" matches a name at any depth; with "/" it is
 * anchored at the app root. "*" and "?" stay within a path segment, "**" crosses them.
 * Anything under an excluded directory is excluded too.
 */
export function compileExcludes(patterns: readonly string[]): (relativePath: string) => boolean {
  const matchers = patterns.map(compile);
  return (relativePath) => {
    const clean = relativePath.replace(/^\.\/+/, "").replace(/\/+$/, "");
    if (clean === "" || clean === ".") return false;
    const segments = clean.split("/");
    for (let i = 1; i <= segments.length; i++) {
      const prefix = segments.slice(0, i).join("/");
      const name = segments[i - 1] ?? "";
      if (matchers.some((m) => (m.anchored ? m.regex.test(prefix) : m.regex.test(name)))) return true;
    }
    return false;
  };
}

function compile(pattern: string): { anchored: boolean; regex: RegExp } {
  let p = pattern.trim().replace(/\/+$/, "");
  const anchored = p.includes("/");
  p = p.replace(/^\/+/, "");
  let source = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === "*" && p[i + 1] === "*") {
      source += ".*";
      i++;
      if (p[i + 1] === "/") i++;
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return { anchored, regex: new RegExp(`^${source}$`) };
}
