import * as z from "zod";
import { configSchema } from "./schema.js";

/** The JSON Schema of deploy.config.json (input side: durations may be strings), for `$schema`. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }),
    $id: "https://github.com/nexus-deploy/nexus/config.schema.json",
    title: "nexus deploy.config.json",
  };
}
