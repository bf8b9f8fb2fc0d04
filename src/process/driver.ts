import type * as z from "zod";
import type { Facts } from "../check/facts.js";
import type { CheckItem } from "../check/types.js";
import type { Config, ServerConfig } from "../config/load.js";
import type { ProcessManager } from "./process-manager.js";

/**
 * A process manager driver, as one value (`process.type` in the config); `managers.ts` lists
 * them. Nothing outside the driver's folder asks which one runs the app.
 */
export interface ProcessManagerDriver<Type extends string = string, Section extends z.ZodType = z.ZodType> {
  /** The config's `process.type`; its settings are the config section of that name (`pm2`). */
  readonly type: Type;
  /** That section, every field with its default. */
  readonly section: Section;
  /** Why `app.name`, the default process name, would mean something else to this manager. */
  nameProblem?(name: string): string | undefined;
  create(config: Config): ProcessManager;
  /** `nexus check` on a server: a read-only script whose facts (check/facts.ts) `items` reads. */
  readonly check: {
    script(config: Config, server: ServerConfig): string;
    items(facts: Facts, config: Config, server: ServerConfig): CheckItem[];
  };
}
