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
  /** Its driver code is imported when first used: the value itself stays light (the config schema is made from it). */
  create(config: Config): Promise<ProcessManager>;
  /** `nexus check` on a server: a read-only script, and what its facts (check/facts.ts) say. */
  check(config: Config, server: ServerConfig): Promise<ProcessManagerCheck>;
}

export interface ProcessManagerCheck {
  script: string;
  items(facts: Facts): CheckItem[];
}
