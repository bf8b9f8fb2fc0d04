import path from "node:path/posix";
import type { Config } from "../../config/load.js";
import type { Layout } from "../../remote/layout.js";
import { script } from "../../remote/op.js";
import { stdoutOrThrow } from "../../ssh/errors.js";
import type { CommandRunner, InteractiveRunner } from "../../ssh/session.js";
import type {
  PreparedRestart,
  ProcessInfo,
  ProcessManager,
  ReleaseProcess,
  RestartResult,
} from "../process-manager.js";
import { ecosystemFile } from "./ecosystem.js";
import { jlistCommand, parseJlist } from "./jlist.js";
import { preparedRestart } from "./prepared.js";
import { PERSIST_SCRIPT, parseRestart, RESTART_SCRIPT, STOP_SCRIPT } from "./restart-script.js";

const STARTING = "starting the app under PM2";

/** PM2, in the server's own installation: one ecosystem file per release, outside the release. */
export class Pm2 implements ProcessManager {
  readonly name = "pm2";

  constructor(
    private readonly options: Pick<Config["pm2"], "name" | "killTimeout"> &
      Partial<Pick<Config["pm2"], "instances" | "execMode" | "options">> & { script: string },
  ) {}

  /** "max" depends on the server's CPUs: then the count PM2 started is the one checked. */
  get instances(): number | undefined {
    const n = this.options.instances ?? 1;
    return n === "max" ? undefined : n;
  }

  /**
   * The PM2 name of the app's process (`port` left out), or of the surge strategy's process on
   * `port`: "<name>-<port>", so the two run side by side and each is deleted alone.
   */
  processName(port?: number): string {
    return port === undefined ? this.options.name : `${this.options.name}-${port}`;
  }

  private ecosystemPath(layout: Layout, release: string, port?: number): string {
    return layout.ecosystem(port === undefined ? release : `${release}@${port}`);
  }

  processFile(layout: Layout, release: ReleaseProcess): { path: string; content: string } {
    const logs = this.logFiles(layout);
    return {
      path: this.ecosystemPath(layout, release.release, release.port),
      content: ecosystemFile({
        name: this.processName(release.port),
        script: this.options.script,
        cwd: release.cwd,
        env: release.env,
        killTimeout: this.options.killTimeout,
        outFile: logs.out,
        errorFile: logs.error,
        instances: this.options.instances,
        execMode: this.options.execMode,
        options: this.options.options,
      }),
    };
  }

  /**
   * How long a restart may take before PM2 is taken for stuck: each instance stopped (killTimeout)
   * and started (listen_timeout, 3 s by PM2's default), plus a minute. "max" is the server's CPU
   * count, unknown here: 64 bounds it.
   */
  get restartDeadlineMs(): number {
    const instances = this.instances ?? 64;
    const listen = this.options.options?.listen_timeout ?? 3000;
    return 60_000 + instances * (this.options.killTimeout + listen);
  }

  async restart(
    runner: CommandRunner,
    layout: Layout,
    release: string,
    port?: number,
  ): Promise<RestartResult> {
    const command = script(
      RESTART_SCRIPT,
      this.processName(port),
      this.ecosystemPath(layout, release, port),
      "",
      this.restartDeadlineMs,
    );
    const result = await runner.exec(command, { what: STARTING });
    return parseRestart(stdoutOrThrow(runner.name, STARTING, result));
  }

  /** The restart program started with "wait": Node, PM2's API and its daemon connection ready. */
  prepareRestart(runner: InteractiveRunner, layout: Layout, release: string, port?: number): PreparedRestart {
    const command = script(
      RESTART_SCRIPT,
      this.processName(port),
      this.ecosystemPath(layout, release, port),
      "wait",
      this.restartDeadlineMs,
    );
    return preparedRestart(runner, command, release, STARTING);
  }

  async inspect(runner: CommandRunner, port?: number): Promise<ProcessInfo[]> {
    const name = this.processName(port);
    return parseJlist((await runner.exec(jlistCommand(name))).stdout, name);
  }

  async stop(runner: CommandRunner, port?: number): Promise<void> {
    await runner.run(script(STOP_SCRIPT, this.processName(port), this.restartDeadlineMs), {
      what: "stopping the app",
    });
  }

  async persist(runner: CommandRunner): Promise<void> {
    await runner.run(script(PERSIST_SCRIPT), { what: "saving the PM2 process list" });
  }

  logFiles(layout: Layout): { out: string; error: string } {
    return { out: path.join(layout.logs, "app-out.log"), error: path.join(layout.logs, "app-error.log") };
  }
}
