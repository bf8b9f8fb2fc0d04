import * as z from "zod";
import { duration, envMap, nonEmpty } from "../../config/fields.js";
import { PM2_OPTIONS } from "./ecosystem.js";

/**
 * Why PM2 would read this process name as something else, or undefined when it is a plain name:
 * `pm2 delete all` removes every app, a name JS reads as a number (`12`, `1e3`, `0x1f`) is a pm
 * id, a leading "-" is an option, `/…/` a regex, and a name containing ".json", ".yml", ".yaml"
 * or ".config.js" a process file.
 */
export function pm2NameProblem(name: string): string | undefined {
  if (name === "all") return '"all" means every process to PM2: choose another name';
  if (name.trim() !== "" && !Number.isNaN(Number(name)))
    return `"${name}" reads as a PM2 process id: use a name with a letter in it`;
  if (name.startsWith("-")) return `"${name}" would be read as an option: it must not start with "-"`;
  if (name.startsWith("/") && name.endsWith("/")) return `"${name}" would be read as a regex by PM2`;
  const fileLike = [".json", ".yml", ".yaml", ".config.js", ".config.cjs", ".config.mjs"].find((ext) =>
    name.includes(ext),
  );
  if (fileLike) return `"${name}" contains "${fileLike}": PM2 would read it as a process file`;
  return undefined;
}

/** The config's `pm2` section. */
export const pm2Schema = z.strictObject({
  /** PM2 process name; defaults to app.name. */
  name: nonEmpty
    .superRefine((name, ctx) => {
      const problem = pm2NameProblem(name);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  /** The app's environment, on every server (servers[].env adds to it). */
  env: envMap.default({}),
  /** Instances per server: a number, or "max" (one per CPU). */
  instances: z.union([z.number().int().min(1), z.literal("max")]).default(1),
  /** "cluster" runs the instances behind Node's cluster module, sharing the port. */
  execMode: z.enum(["fork", "cluster"]).default("fork"),
  /** Other ecosystem keys passed to PM2 as they are (an allow-list: nexus sets the rest). */
  options: PM2_OPTIONS.default({}),
  /** How long PM2 waits for the app to exit after SIGINT before it kills it. */
  killTimeout: duration.default(10_000),
});
