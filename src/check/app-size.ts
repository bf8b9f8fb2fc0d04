import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { ALWAYS_EXCLUDED, compileExcludes } from "../artifact/exclude.js";

/** Bytes the app ships (what packing would include), plus its local node_modules as a guess for the install. */
export async function appSizeEstimate(root: string, extraExcludes: readonly string[]): Promise<number> {
  const excluded = compileExcludes([...ALWAYS_EXCLUDED, ...extraExcludes]);
  const walk = async (rel: string, filter: boolean): Promise<number> => {
    let total = 0;
    const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (filter && excluded(child)) continue;
      if (entry.isDirectory()) total += await walk(child, filter);
      else if (entry.isFile()) total += (await lstat(path.join(root, child))).size;
    }
    return total;
  };
  return (await walk("", true)) + (await walk("node_modules", false));
}
