import type { Balancer } from "../balancer/balancer.js";
import type { ServerConfig } from "../config/load.js";

/**
 * What the rolling engine does to servers, as an interface: the real one works through the
 * fleet's SSH sessions, balancer and process manager; unit tests drive the engine with fakes.
 */
export interface FleetOps {
  readonly balancer: Balancer;
  /** Switch, restart and gate one server onto a release; true when the gate passed. */
  activate(server: ServerConfig, release: string, signal?: AbortSignal): Promise<boolean>;
  /**
   * Gets the server's restart onto `release` ready before it is out of rotation, for the next
   * `activate` of that release to use (it saves the process manager's start-up while out of
   * rotation). A restart already ready for that release is kept.
   */
  prepare?(server: ServerConfig, release: string): void;
  /** Ends every prepared restart that was not used (a failed drain, the end of a rollout). */
  discardPrepared?(): void;
  /** One /health probe passes now (any release). */
  healthy(server: string): Promise<boolean>;
  /** Stops the app (a server with no release to go back to). */
  stop(server: ServerConfig): Promise<void>;
  /** Makes what each server runs now survive a reboot. */
  persist(servers: string[]): Promise<void>;
  /** What the surge strategy does on a server (surge/). */
  surge?: SurgeOps;
}

/**
 * The surge strategy's moves on one server: two processes of the app, one per port (app.port and
 * app.surgePort), the balancer sending the server's traffic to one of them.
 */
export interface SurgeOps {
  /** The port serving now as recorded on the server; undefined: never surged (the app's one process, on app.port). */
  livePort(server: ServerConfig): Promise<number | undefined>;
  /** Gets the start of `release` on `port` ready ahead of the server's turn (its PM2 connection). */
  prepare?(server: ServerConfig, release: string, port: number): void;
  /**
   * Writes the process file of `release` on `port` ahead of the server's turn (once the release
   * is staged), for `start` to use; `start` writes it again if that failed.
   */
  writeProcessFile?(server: ServerConfig, release: string, port: number): void;
  /**
   * Points `current` at `release` and starts it as the process of `port`, beside the one serving
   * (a process left on that port by an earlier try is replaced), then gates it on that port.
   * True when the gate passed.
   */
  start(server: ServerConfig, release: string, port: number, signal?: AbortSignal): Promise<boolean>;
  /** Records `port` as the one serving. */
  record(server: ServerConfig, port: number): Promise<void>;
  /** Stops the process of `port` (undefined: the app's one process of a server never surged). */
  stop(server: ServerConfig, port: number | undefined): Promise<void>;
  /** Points `current` back at `release` (the process serving runs it: a gate failed beside it). */
  point(server: ServerConfig, release: string): Promise<void>;
}
