import * as z from "zod";

const text = z.string().min(1, "must not be empty");
const words = z.union([text, z.array(text)]);
const ms = z.number().int().min(0);

/**
 * The ecosystem keys `pm2.options` may pass through to PM2, each with its type. Everything else
 * (name, script, cwd, env, exec_mode, instances, logs, kill_timeout, restart policy) is set by
 * nexus from its own config, so that the gate and the rollback know what runs.
 */
export const PM2_OPTIONS = z
  .strictObject({
    max_memory_restart: z.union([text, z.number().int().min(1)]),
    node_args: words,
    args: words,
    interpreter: text,
    interpreter_args: words,
    restart_delay: ms,
    exp_backoff_restart_delay: ms,
    listen_timeout: ms,
    wait_ready: z.boolean(),
    shutdown_with_message: z.boolean(),
    source_map_support: z.boolean(),
    time: z.boolean(),
    log_date_format: text,
    cron_restart: text,
    instance_var: text,
    increment_var: text,
    filter_env: z.union([z.boolean(), z.array(text)]),
  })
  .partial();

export type Pm2Options = z.output<typeof PM2_OPTIONS>;

export interface EcosystemApp {
  name: string;
  script: string;
  /** PM2's interpreter, arguments and node options for a start command (they replace pm2.options'). */
  interpreter?: string;
  args?: string[];
  nodeArgs?: string[];
  cwd: string;
  env: Record<string, string>;
  killTimeout: number;
  outFile: string;
  errorFile: string;
  instances?: number | "max";
  execMode?: "fork" | "cluster";
  options?: Pm2Options;
}

/**
 * PM2 pins the physical cwd at start and restart does not pick up a new script path
 * (Unitech/pm2#1663, #5939), so each release has its own ecosystem file naming its directory,
 * and the app is deleted and started afresh from it.
 */
export function ecosystemFile(app: EcosystemApp): string {
  return `${JSON.stringify(
    {
      apps: [
        {
          ...app.options,
          ...(app.interpreter !== undefined ? { interpreter: app.interpreter } : {}),
          ...(app.args !== undefined ? { args: app.args } : {}),
          ...(app.nodeArgs !== undefined ? { node_args: app.nodeArgs } : {}),
          name: app.name,
          script: app.script,
          cwd: app.cwd,
          env: app.env,
          // PM2 takes "max" as "one per CPU" (its -1 means "all but one").
          instances: app.instances ?? 1,
          exec_mode: app.execMode ?? "fork",
          kill_timeout: app.killTimeout,
          // How often PM2 looks whether a stopped process has exited (default 100 ms): the old
          // process's wait is part of the time a server is out of rotation.
          kill_retry_time: 25,
          // Treat an app that dies within 2s of start as crashed, so a crash loop shows as restarts.
          min_uptime: 2000,
          max_restarts: 10,
          autorestart: true,
          merge_logs: true,
          out_file: app.outFile,
          error_file: app.errorFile,
        },
      ],
    },
    null,
    2,
  )}\n`;
}

/**
 * An `args` or `node_args` value as PM2 reads it: an array as it is, a string split at blanks
 * outside quotes (PM2's lib/tools/Config.js), so that a start command's words can go before it.
 */
export function pm2Words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  return value
    .split(/([\w-]+="[^"]*")|([\w-]+='[^']*')|"([^"]*)"|'([^']*)'|\s/)
    .filter((word): word is string => typeof word === "string" && word.trim() !== "");
}
