import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { selectConfiguredApp } from "../artifact/pack.js";
import type { Config } from "../config/load.js";

/** Bytes the app ships (what packing selects), plus its local node_modules as a guess for the install. */
export async function appSizeEstimate(config: Pick<Config, "app" | "file">): Promise<number> {
  const { app } = config;
  const shipped = await selectConfiguredApp(config)
    .then((selection) => selection.bytes)
    .catch(() => 0);
  return shipped + (await treeSize(path.join(app.root, "node_modules")));
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await treeSize(child);
    else if (entry.isFile()) total += (await stat(child)).size;
  }
  return total;
}
