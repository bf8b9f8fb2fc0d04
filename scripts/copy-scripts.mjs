// Copies the script files under src/ (remote shell scripts, *.sh, and the Node programs run on
// servers, *.cjs) into dist/ beside the compiled modules that read them (src/remote/script-file.ts):
// tsc compiles only the TypeScript. Run by `npm run build` after tsc.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCRIPT_FILE = /\.(sh|cjs)$/;

/** Every script file under `dir`, as paths relative to it. */
export function scriptFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((file) => SCRIPT_FILE.test(file))
    .sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = scriptFiles(path.join(root, "src"));
  for (const file of files) {
    mkdirSync(path.dirname(path.join(root, "dist", file)), { recursive: true });
    copyFileSync(path.join(root, "src", file), path.join(root, "dist", file));
  }
  console.log(`copied ${files.length} script file(s) into dist/`);
}
