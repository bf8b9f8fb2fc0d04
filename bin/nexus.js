#!/usr/bin/env node
// The CLI from a checkout: runs the build in dist/. (The npm package runs bundle/nexus.mjs.)
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const mainFile = join(root, "dist", "cli", "main.js");
const inRoot = relative(process.cwd(), root) || ".";
const inRootPrefix = inRoot === "." ? "" : `cd ${JSON.stringify(inRoot)} && `;

/** A checkout before its first build or install: what to run, instead of a stack trace. */
function notReady(what, command) {
  process.stderr.write(`nexus: ${what}: run \`${inRootPrefix}${command}\` first (npm run demo does both)\n`);
  process.exitCode = 2;
}

if (!existsSync(mainFile)) {
  notReady(
    "this checkout is not built yet (no dist/)",
    existsSync(join(root, "node_modules")) ? "npm run build" : "npm ci && npm run build",
  );
} else {
  try {
    const { endOutputQuietlyOnClosedPipe } = await import(
      pathToFileURL(join(root, "dist", "cli", "closed-pipes.js")).href
    );
    const { main } = await import(pathToFileURL(mainFile).href);
    endOutputQuietlyOnClosedPipe(process.stdout, process.stderr);
    main(process.argv).then(
      (code) => {
        process.exitCode = code;
      },
      (error) => {
        console.error(`nexus: internal error: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
      },
    );
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
    notReady(`a module is missing (${error.message.split("\n")[0]})`, "npm ci && npm run build");
  }
}
