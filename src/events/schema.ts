import * as z from "zod";
import type { DeployEvent, Outcome, ServerResult, Step, SummaryRow } from "./events.js";
import { resultShapes } from "./results.js";
import { strictMembers } from "./union.js";

/**
 * The `--json` wire format as a zod schema: one object per line, `{ v, time, type, ... }`.
 * `events.ts` keeps the TypeScript types the engine uses; the checks at the bottom of this file
 * fail the build if the two drift apart. `npm run build` writes events.schema.json from this.
 */

export const EVENTS_SCHEMA_VERSION = 1;

const text = z.string();
const serverName = z.string().min(1).describe("a server name from the config");
const milliseconds = z.number().min(0);

export const stepSchema = z
  .enum([
    "connect",
    "lock",
    "upload",
    "extract",
    "install",
    "drain",
    "switch",
    "restart",
    "gate",
    "enable",
    "restore",
  ])
  .describe("a step of the work on one server");

export const serverResultSchema = z.enum([
  "deployed",
  "rolled back",
  "restored",
  "not reached",
  "needs human",
  "failed",
]);

export const outcomeSchema = z.enum(["success", "failed", "needs-human", "interrupted"]);

const connectionsCutSchema = z
  .strictObject({
    byBalancer: z
      .number()
      .int()
      .min(0)
      .describe("shut by the balancer at the timeout (HAProxy: shutdown sessions server)"),
    byRestart: z.number().int().min(0).describe("left to the restart (the app closes them on SIGINT)"),
  })
  .describe(
    "connections still open when a drain's drainTimeout ended (WebSockets, SSE), and what closed them",
  );

export const summaryRowSchema = z.strictObject({
  server: serverName,
  result: serverResultSchema,
  release: text.optional().describe("the release the server serves now, if known"),
  outOfRotation: z.number().min(0).optional().describe("seconds out of rotation during this command"),
  watched: z
    .strictObject({
      requests: z.number().int().min(0),
      failures: z.number().int().min(0),
      rate: z.number().min(0).max(1),
      p99: z.number().min(0).optional().describe("99th percentile of its response times, ms"),
    })
    .optional()
    .describe("requests, failures and their ratio at the balancer during its watch window (rolling.watch)"),
  connectionsCut: connectionsCutSchema.optional(),
  note: text.optional(),
});

const latencySchema = z.strictObject({
  p50: z.number().min(0),
  p95: z.number().min(0),
  p99: z.number().min(0),
  samples: z.number().int().min(0).describe("how many response times"),
});

const eventShapes = {
  begin: {
    type: z.literal("begin"),
    command: text.describe('the command: "deploy" or "rollback"'),
    release: text
      .optional()
      .describe("the release being deployed (rollback: the target(s), comma-separated)"),
    destination: text.optional().describe("the config's destination (-d staging), when one was given"),
    servers: z.array(serverName),
  },
  phase: {
    type: z.literal("phase"),
    phase: text.describe('"build", "pack", "preflight", "stage", "roll", "rollback", "finish", "recover"'),
    message: text,
  },
  step: {
    type: z.literal("step"),
    server: serverName,
    step: stepSchema,
    status: z.enum(["start", "done", "fail"]),
    message: text.optional(),
    ms: milliseconds.optional().describe("how long the step took (done / fail)"),
    connectionsCut: connectionsCutSchema
      .optional()
      .describe("drain done: the connections its timeout left open, and what closes them"),
  },
  progress: {
    type: z.literal("progress"),
    server: serverName,
    sent: z.number().min(0).describe("bytes uploaded so far"),
    total: z.number().min(0).describe("bytes to upload"),
  },
  info: { type: z.literal("info"), message: text, server: serverName.optional() },
  warn: { type: z.literal("warn"), message: text, server: serverName.optional() },
  error: {
    type: z.literal("error"),
    message: text,
    server: serverName.optional(),
    file: text.optional().describe("a config error: the config file (as given, or relative to the cwd)"),
    line: z.number().int().min(1).optional().describe("a config error: its line in the file (1-based)"),
    column: z.number().int().min(1).optional().describe("a config error: its column (1-based)"),
  },
  "gate-failed": {
    type: z.literal("gate-failed"),
    server: serverName,
    reason: text,
    timeline: z.array(text).describe("one line per probe: time, result, status, latency, detail"),
    logs: z.array(text).describe("last lines of the app's error log"),
  },
  watch: {
    type: z.literal("watch"),
    server: serverName,
    result: z
      .enum(["pass", "breach", "unjudged", "inconclusive", "interrupted"])
      .describe(
        '"unjudged": inconclusive after every extension and rolling.watch.inconclusive is "pass"; "inconclusive": the same under "halt" or "rollback"',
      ),
    verdict: z.enum(["pass", "fail", "inconclusive"]).describe("the judge's verdict"),
    metric: z
      .enum(["errors", "latency", "health"])
      .optional()
      .describe("what decided a fail or an inconclusive"),
    p: z.number().min(0).max(1).optional().describe("one-sided p-value of the deciding test"),
    reference: z
      .enum(["untouched", "baseline", "none"])
      .describe(
        "compared with the untouched servers (same seconds), the fleet before the deploy, or nothing",
      ),
    requests: z.number().int().min(0),
    failures: z.number().int().min(0),
    rate: z.number().min(0).max(1).describe("failures / requests"),
    limit: z.number().min(0).describe("the failure ratio above which the error effect counts"),
    threshold: z
      .enum(["maxFailureRatio", "untouched", "baseline", "health"])
      .describe("which minimum effect set the limit"),
    untouchedRate: z.number().min(0).max(1).optional().describe("the untouched servers' rate, same seconds"),
    baselineRate: z.number().min(0).max(1).optional().describe("the fleet's rate before the deploy"),
    latency: latencySchema.optional().describe("the server's response times during the window, ms"),
    referenceLatency: latencySchema.optional().describe("the reference's response times, ms"),
    baselineLatency: latencySchema
      .optional()
      .describe("the fleet's before the deploy, when the reference is the untouched servers, ms"),
    seconds: milliseconds.describe("how long the window lasted, in seconds"),
    message: text,
  },
  hook: {
    type: z.literal("hook"),
    hook: z.enum(["beforeRoll", "afterStart", "afterDeploy", "afterFailure"]),
    server: serverName.optional().describe("the server it runs on; none for afterDeploy / afterFailure"),
    status: z.enum(["start", "output", "done", "fail"]),
    message: text
      .optional()
      .describe("start: the command; output: one line of its output, secrets masked; done / fail: a note"),
    ms: milliseconds.optional(),
  },
  log: {
    type: z.literal("log"),
    server: serverName,
    stream: z.enum(["out", "err"]).describe("the app's output log or its error log"),
    line: text.describe("one line of it, secrets masked (nexus logs)"),
  },
  summary: {
    type: z.literal("summary"),
    outcome: outcomeSchema,
    release: text.optional(),
    rows: z.array(summaryRowSchema),
    exitCode: z.number().int().describe("the exit code nexus exits with"),
    seconds: z.number().min(0).describe("wall time of the command"),
  },
} as const;

/** The events of src/events/events.ts, without the wire envelope. */
export const deployEventSchema = z.discriminatedUnion("type", strictMembers(eventShapes));

const envelope = {
  v: z.literal(EVENTS_SCHEMA_VERSION).describe("schema version; changes only on an incompatible change"),
  time: z.iso.datetime().describe("when the event was emitted (ISO 8601, UTC)"),
};

const result = z.literal("result");

/** One line of `nexus --json` output. */
export const jsonLineSchema = z
  .discriminatedUnion("type", [
    ...strictMembers(eventShapes, envelope),
    z.strictObject({
      ...envelope,
      type: z.literal("output"),
      line: text.describe("a line that is not an event: a dry-run plan line"),
    }),
    z
      .discriminatedUnion("command", strictMembers(resultShapes, { ...envelope, type: result }))
      .describe("a command's structured answer (docs/events.md: `result`)"),
  ])
  .describe("one line of `nexus --json` output (docs/events.md)");

export type JsonLine = z.infer<typeof jsonLineSchema>;

/** events.schema.json: the JSON Schema of one `--json` line. */
export function eventsJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(jsonLineSchema, { io: "output" }),
    $id: "https://github.com/nexus-deploy/nexus/events.schema.json",
    title: `nexus --json event (v${EVENTS_SCHEMA_VERSION})`,
  };
}

// ---- compile-time checks: the schema and events.ts describe the same types ----

type Exactly<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Object types with the same keys, optionality and value types, member by member of a union. */
type Flat<T> = T extends unknown ? { [K in keyof T]: T[K] } : never;
type Same<A, B> = Exactly<Flat<A>, Flat<B>>;
type Assert<T extends true> = T;

export type EventTypeChecks = [
  Assert<Same<z.infer<typeof deployEventSchema>, DeployEvent>>,
  Assert<Same<z.infer<typeof summaryRowSchema>, SummaryRow>>,
  Assert<Same<z.infer<typeof stepSchema>, Step>>,
  Assert<Same<z.infer<typeof serverResultSchema>, ServerResult>>,
  Assert<Same<z.infer<typeof outcomeSchema>, Outcome>>,
];
