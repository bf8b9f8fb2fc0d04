// Loads test/e2e/load.ts (the load harness the zero-downtime test uses) from plain Node: it is
// transpiled with the TypeScript compiler (a devDependency) into node_modules/.cache, where
// its `autocannon` import resolves against the project's node_modules.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

export async function importLoadHarness(projectRoot) {
  const source = readFileSync(path.join(projectRoot, "test", "e2e", "load.ts"), "utf8");
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: "load.ts",
  });
  const dir = path.join(projectRoot, "node_modules", ".cache", "nexus-bench");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "load.mjs");
  writeFileSync(file, outputText);
  return import(pathToFileURL(file).href);
}
