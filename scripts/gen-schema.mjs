// Writes config.schema.json and events.schema.json from the zod schemas (run by `npm run build`).
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { configJsonSchema } from "../dist/config/json-schema.js";
import { eventsJsonSchema } from "../dist/events/schema.js";

writeFileSync(
  new URL("../config.schema.json", import.meta.url),
  `${JSON.stringify(configJsonSchema(), null, 2)}\n`,
);

const events = fileURLToPath(new URL("../events.schema.json", import.meta.url));
writeFileSync(events, `${JSON.stringify(eventsJsonSchema(), null, 2)}\n`);
// events.schema.json is linted like any source file: give it Biome's layout when Biome is installed.
const biome = fileURLToPath(new URL("../node_modules/@biomejs/biome/bin/biome", import.meta.url));
if (existsSync(biome))
  execFileSync(process.execPath, [biome, "format", "--write", events], { stdio: "ignore" });
