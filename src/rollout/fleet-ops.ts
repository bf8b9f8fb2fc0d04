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
}
