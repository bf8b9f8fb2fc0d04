import path from "node:path/posix";
import type { Config } from "../../config/load.js";
import type { Layout } from "../../remote/layout.js";
import { type RemoteOp, script } from "../../remote/op.js";
import { writePrivateFile } from "../../remote/release.js";
import { scriptFile, withProgram } from "../../remote/script-file.js";
import { stdoutOrThrow } from "../../ssh/errors.js";
import type { CommandRunner, InteractiveRunner } from "../../ssh/session.js";
import { expandStart, isScriptFile, type StartCommand } from "../../start/start.js";
import type {
  PreparedRestart,
  ProcessFile,
  ProcessInfo,
  ProcessManager,
  ReleaseProcess,
  RestartResult,
} from "../process-manager.js";
import { ecosystemFile, pm2Words } from "./ecosystem.js";
import { jlistCommand, parseJlist } from "./jlist.js";
import { preparedRestart } from "./prepared.js";
import { PERSIST_SCRIPT, parseRestart, RESTART_SCRIPT, STOP_SCRIPT } from "./restart-script.js";

const STARTING = "starting the app under PM2";
const WRITING = "writing the process file";

/**
 * $1 the ecosystem file, $2 "bin" or "file", $3 the binary's name or the file `node` runs; the
 * file's JSON on stdin, $4 the release's directory (a workspace package's dependencies may sit in its
 * node_modules): write-ecosystem.cjs finds in the installed release the JS file PM2 runs,
 * sets it as the app's script and writes the file (0600). Prints `@start <script>`.
 */
export const WRITE_ECOSYSTEM_SCRIPT = withProgram(
  scriptFile(import.meta.url, "write-ecosystem.sh"),
  scriptFile(import.meta.url, "write-ecosystem.cjs"),
);

/** PM2, in the server's own installation: one ecosystem file per release, outside the release. */
export class Pm2 implements ProcessManager {
  readonly name = "pm2";

  constructor(
    private readonly options: Pick<Config["pm2"], "name" | "killTimeout"> &
      Partial<Pick<Config["pm2"], "instances" | "execMode" | "options">> & {
        /** What app.start runs; a function when reading it waits for the first process file. */
        start: StartCommand | (() => StartCommand);
      },
  ) {}

  private get start(): StartCommand {
    const { start } = this.options;
    return typeof start === "function" ? start() : start;
  }

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

  processFile(layout: Layout, release: ReleaseProcess): ProcessFile {
    const logs = this.logFiles(layout);
    const start = this.start;
    const file = this.ecosystemPath(layout, release.release, release.port);
    const command = expandStart(start, release.env);
    // A plain file in app.start keeps the ecosystem file it always had: pm2.options' as given.
    const plain = !("bin" in start.run) && !start.run.node;
    const { args, node_args, interpreter_args, interpreter, ...options } = this.options.options ?? {};
    const content = ecosystemFile({
      name: this.processName(release.port),
      script: "bin" in start.run ? `node_modules/.bin/${start.run.bin}` : start.run.file,
      cwd: release.cwd,
      env: { ...release.env, ...command.env },
      killTimeout: this.options.killTimeout,
      outFile: logs.out,
      errorFile: logs.error,
      instances: this.options.instances,
      execMode: this.options.execMode,
      options: plain ? this.options.options : options,
      ...(plain
        ? {}
        : {
            // node, whatever the file's extension says to PM2 (".ts" would be bun; none, a guess).
            interpreter: interpreter ?? "node",
            args: [...command.args, ...pm2Words(args)],
            nodeArgs: [...command.nodeArgs, ...pm2Words(node_args), ...pm2Words(interpreter_args)],
          }),
    });
    const resolve =
      "bin" in start.run
        ? { kind: "bin", name: start.run.bin }
        : start.run.node && !isScriptFile(start.run.file)
          ? { kind: "file", name: start.run.file }
          : undefined;
    return {
      path: file,
      content,
      write: resolve
        ? writeResolved(file, content, resolve, layout.release(release.release))
        : writePlain(file, content),
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
    return preparedRestart(runner, command, release, STARTING, {
      name: (other) => this.processName(other),
      timeoutMs: this.restartDeadlineMs,
    });
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

function writePlain(file: string, content: string): RemoteOp<string | undefined> {
  const op = writePrivateFile(file, content, WRITING);
  return { ...op, parse: (result, server) => void op.parse(result, server) };
}

/** The ecosystem file written once the server has found the JS file PM2 runs: its path is the result. */
function writeResolved(
  file: string,
  content: string,
  resolve: { kind: string; name: string },
  /** The release's directory: a workspace package's dependencies may be installed up to it. */
  top: string,
): RemoteOp<string | undefined> {
  return {
    what: WRITING,
    command: script(WRITE_ECOSYSTEM_SCRIPT, file, resolve.kind, resolve.name, top),
    stdin: content,
    parse: (result, server) =>
      stdoutOrThrow(server, WRITING, result)
        .split("\n")
        .find((line) => line.startsWith("@start "))
        ?.slice("@start ".length),
  };
}
