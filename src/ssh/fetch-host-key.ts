import type { Config, ServerConfig } from "../config/load.js";
import { createConnector, type SshTarget } from "./connect.js";
import { SshError } from "./errors.js";
import type { HostKeyVerifier } from "./host-keys.js";
import { SshSession } from "./session.js";

/** Refuses every key, keeping the one offered: the handshake stops before any authentication. */
class KeyCapture implements HostKeyVerifier {
  key: Buffer | undefined;
  verify(key: Buffer): boolean {
    this.key = key;
    return false;
  }
  problem(): string | undefined {
    return this.key ? "host key captured" : undefined;
  }
}

/**
 * Fetches the host key a server presents, offering only `algorithms` when given. Through its jump
 * hosts, if it has any: each of them must be trusted already (their keys are checked as a
 * connection's would be).
 */
export async function fetchHostKey(
  server: ServerConfig,
  target: SshTarget,
  config: Config,
  algorithms?: string[],
): Promise<Buffer> {
  const capture = new KeyCapture();
  const connector = target.hops.length > 0 ? createConnector(config) : undefined;
  try {
    const via = await connector?.streamTo(target, server.name);
    const session = await SshSession.connect({
      server: server.name,
      host: target.host,
      port: target.port,
      username: target.user,
      hostKeyAlgorithms: algorithms,
      readyTimeout: config.ssh.readyTimeout,
      keepaliveInterval: config.ssh.keepaliveInterval,
      hostKey: capture,
      remoteShell: false,
      ...(via ? { sock: via.stream, onClose: via.release } : {}),
    });
    session.close();
  } catch (error) {
    if (capture.key) return capture.key;
    throw error;
  } finally {
    connector?.close();
  }
  throw new SshError(server.name, "host-key", "the server was accepted without a host key check");
}
