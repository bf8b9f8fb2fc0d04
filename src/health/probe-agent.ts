import http from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

/** Opens one connection to the app: a forwarded SSH channel (`SshSession.forwardSocket`). */
export type OpenConnection = () => Promise<Duplex>;

/** Where probes go: the app's address as the connecting end sees it, and how to connect there. */
export interface ProbeEndpoint {
  host: string;
  port: number;
  /** Through the server's SSH connection; undefined: TCP from here (health.via "direct"). */
  open?: OpenConnection;
}

/**
 * The connection a series of probes of one app port goes through: one connection, kept alive
 * between probes (HTTP keep-alive), opened again when the app closes it or a probe fails on it.
 * Through SSH a probe then costs one round trip (its request) instead of two (a channel open, then
 * the request). An agent lives as long as its series and is destroyed at its end: a gate's is made
 * once the restart has returned, so no connection it keeps can reach a process the restart
 * replaced; a process that dies during the gate (a crash loop) closes its connections with it.
 */
export class ProbeAgent extends http.Agent {
  /** Connections opened so far (each a channel open through SSH). */
  opened = 0;
  private ended = false;

  constructor(readonly endpoint: ProbeEndpoint) {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, socket: Duplex) => void,
  ): Duplex | undefined {
    this.opened++;
    const open = this.endpoint.open;
    // net.createConnection: its second argument would be a connect listener, not this callback.
    if (!open) return super.createConnection(options) ?? undefined;
    open().then(
      (socket) => {
        if (!this.ended) return callback?.(null, socket);
        socket.destroy();
        callback?.(Object.assign(new Error("the probes ended"), { code: "ECONNRESET" }), socket);
      },
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }

  override destroy(): void {
    this.ended = true;
    super.destroy();
  }
}

/**
 * Agents probed in turn, one per instance of the app: in cluster mode each kept connection stays
 * with the worker that accepted it, and the cluster hands new connections to its workers in turn,
 * so a streak of passes still reaches several workers, as fresh connections did. One (fork mode):
 * one connection.
 */
export class ProbeAgents {
  private readonly agents: ProbeAgent[];
  private turn = 0;

  constructor(endpoint: ProbeEndpoint, lanes = 1) {
    this.agents = Array.from({ length: Math.max(1, Math.min(lanes, 16)) }, () => new ProbeAgent(endpoint));
  }

  /** The agent for the next probe. */
  next(): ProbeAgent {
    const agent = this.agents[this.turn % this.agents.length] as ProbeAgent;
    this.turn++;
    return agent;
  }

  get opened(): number {
    return this.agents.reduce((sum, agent) => sum + agent.opened, 0);
  }

  destroy(): void {
    for (const agent of this.agents) agent.destroy();
  }
}

/** A socket still connecting (TCP): a forwarded one is open when it is handed over. */
export function connecting(socket: Duplex): boolean {
  return (socket as Partial<Socket>).connecting === true;
}
