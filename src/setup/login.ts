import ssh2 from "ssh2";
import type { HostKeyVerifier } from "../ssh/host-keys.js";

export interface BootstrapLogin {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: Buffer;
  agent?: string;
  hostKey: HostKeyVerifier;
  readyTimeout: number;
}

/**
 * One login with whatever the server accepts before nexus's key is installed (a password,
 * another key, the agent), to run a single command. nexus's own sessions never use passwords.
 */
export function runOnce(
  login: BootstrapLogin,
  command: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on("ready", () => {
      client.exec(command, (error, channel) => {
        if (error) {
          client.end();
          reject(error);
          return;
        }
        const chunks: Buffer[] = [];
        channel.on("data", (c: Buffer) => chunks.push(c));
        channel.stderr.on("data", (c: Buffer) => chunks.push(c));
        channel.on("close", (code: number | null) => {
          client.end();
          resolve({ code, output: Buffer.concat(chunks).toString("utf8") });
        });
      });
    });
    client.on("error", (error) => reject(error));
    client.connect({
      host: login.host,
      port: login.port,
      username: login.username,
      ...(login.password !== undefined ? { password: login.password } : {}),
      ...(login.privateKey ? { privateKey: login.privateKey } : {}),
      ...(login.agent ? { agent: login.agent } : {}),
      readyTimeout: login.readyTimeout,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => login.hostKey.verify(key),
    });
  });
}
