import * as z from "zod";
import { BALANCER_DRIVERS } from "../balancer/drivers.js";
import { strictMembers } from "./union.js";

/**
 * The `result` line of `--json` output: the structured answer of a command that is not a deploy
 * (one line, after its events). Part of events.schema.json through src/events/schema.ts.
 */

const text = z.string();

export const statusRowSchema = z.strictObject({
  server: text,
  rotation: text.describe('"in rotation", "drained", or why it is unknown'),
  port: text.describe(
    "the app's port that serves (the surge strategy's live port), with the balancer's when it says another",
  ),
  health: text.describe('"ok", else what failed'),
  release: text.describe("the current release, or an empty string"),
  process: text.describe("the PM2 process: status, pid, restarts"),
  instances: text.describe('instances online / expected: "2/2 online"'),
  lock: text.describe("who holds the deploy lock, or an empty string"),
});

export const releaseRowSchema = z.strictObject({
  server: text,
  id: text.describe("the release id"),
  mark: text.describe('"current", "previous" (the rollback target), "failed", or ""'),
  time: text.describe("when it was deployed (UTC), or an empty string"),
  user: text,
  commit: text,
});

export const execServerSchema = z.strictObject({
  server: text,
  exitCode: z
    .number()
    .int()
    .nullable()
    .describe("the command's exit code; null when it was stopped or could not run"),
  error: text.optional().describe("why it could not run (no current release, a lost connection)"),
  lines: z
    .array(z.strictObject({ stream: z.enum(["out", "err"]), line: text }))
    .describe("its output, line by line, secrets masked"),
});

export const packedFileSchema = z.strictObject({
  path: text.describe("relative to the app root"),
  size: z.number().int().min(0).describe("bytes on disk"),
});

/** One shape per command (without the `{ v, time, type: "result" }` envelope). */
const commandShapes = {
  status: {
    command: z.literal("status"),
    destination: text.optional().describe("the config's destination (-d), when one was given"),
    rows: z.array(statusRowSchema),
  },
  releases: {
    command: z.literal("releases"),
    rows: z.array(releaseRowSchema),
  },
  init: {
    command: z.literal("init"),
    file: text.describe("the config file written (absolute path)"),
    servers: z.array(text).describe("the server names in it"),
  },
  pack: {
    command: z.literal("pack"),
    root: text.describe("the app root (absolute path)"),
    files: z.array(packedFileSchema).describe("what ships, in archive order"),
    count: z.number().int().min(0),
    bytes: z.number().int().min(0).describe("uncompressed bytes of all files"),
    output: text.optional().describe("the tarball written (-o)"),
    compressedBytes: z.number().int().min(0).optional().describe("size of the tarball written"),
    sha256: text.optional().describe("sha256 of the tarball written"),
    warnings: z.array(text).describe("files that look like secrets and ship"),
    leftOut: z
      .array(packedFileSchema)
      .describe("nexus config files in the app, left out (their env values are in plain text)"),
  },
  trust: {
    command: z.literal("trust"),
    server: text,
    host: text.describe("the host as known_hosts names it: host or [host]:port"),
    keyType: text.describe("ssh-ed25519, ecdsa-sha2-nistp256, ..."),
    fingerprint: text.describe("SHA256:..."),
    trusted: z.enum(["already", "added", "replaced"]).describe("what nexus did about the key"),
    knownHosts: text.describe("the known_hosts file"),
  },
  sandbox: {
    command: z.literal("sandbox"),
    action: z.enum(["up", "down", "status"]),
    up: z.boolean().describe("whether the sandbox is running now"),
    hosts: z
      .array(
        z.strictObject({
          name: text,
          ssh: text.describe("user@address:port"),
          app: text.describe("address:port"),
        }),
      )
      .optional()
      .describe("up: the app hosts"),
    lb: text.optional().describe("up: the load balancer's URL"),
    processes: z
      .array(z.strictObject({ name: text, pid: z.number().int(), alive: z.boolean() }))
      .optional()
      .describe("status: the sandbox's processes"),
  },
  plan: {
    command: z.literal("plan"),
    release: text,
    batches: z.array(z.array(text)).describe("server names, batch by batch"),
    files: z.number().int().min(0).describe("files the artifact will hold"),
    bytes: z.number().int().min(0).describe("their uncompressed bytes"),
    start: text.describe(
      "what PM2 will run: app.start, resolved (a package script's command, a dependency's binary)",
    ),
  },
  exec: {
    command: z.literal("exec"),
    servers: z.array(execServerSchema).describe("one per server, in the order they finished"),
  },
  check: {
    command: z.literal("check"),
    ok: z.boolean().describe("no item failed"),
    items: z.array(
      z.strictObject({
        target: text.describe('a server\'s name, or "<host> (balancer)"'),
        check: text.describe("what was looked at: ssh, deploy path, pm2, upstream file, ..."),
        status: z.enum(["ok", "warn", "fail"]),
        detail: z.string(),
        fix: text.optional().describe("what to do about it"),
      }),
    ),
  },
  config: {
    command: z.literal("config"),
    config: z.record(z.string(), z.unknown()).describe("the resolved config, every secret masked"),
  },
} as const;

/** And each balancer driver's config command (`nexus nginx-config`…), as the driver says. */
export const resultShapes: typeof commandShapes & Record<`${string}-config`, z.ZodRawShape> = {
  ...commandShapes,
  ...Object.fromEntries(
    BALANCER_DRIVERS.map(({ configCommand }) => [configCommand.name, configCommand.resultShape]),
  ),
};

export const commandResultSchema = z.discriminatedUnion("command", strictMembers(resultShapes));

/** A balancer config command's result: its fields are its driver's (`ConfigCommand.resultShape`). */
export type BalancerConfigResult = { command: `${string}-config` } & Record<string, unknown>;

export type CommandResult =
  | z.infer<z.ZodDiscriminatedUnion<ReturnType<typeof strictMembers<typeof commandShapes>>>>
  | BalancerConfigResult;
