// A namespace import (here and wherever zod is imported): esbuild then keeps only the parts of zod the CLI
// uses; `import { z }` would keep all of it, locales included (0.56 MB of the bundle, ~25 ms of start-up).
import * as z from "zod";

/**
 * The field schemas every section of the config is built from: config/schema.ts, and the
 * sections each driver brings (balancer/<type>/schema.ts, process/<type>/schema.ts).
 */

export { duration } from "./duration.js";

export const nonEmpty = z.string().min(1, "must not be empty");
export const port = z.number().int().min(1).max(65535);
/** An env value: the text itself, or `{"fromEnv": "NAME"}` to read it from nexus's own environment (CI secrets). */
export const envValue = z.union([
  z.string(),
  z.strictObject({
    fromEnv: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name"),
  }),
]);
export const envMap = z.record(z.string(), envValue);
