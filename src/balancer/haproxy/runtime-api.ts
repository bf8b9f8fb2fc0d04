import { script } from "../../remote/op.js";
import { scriptFile, withProgram } from "../../remote/script-file.js";

/** Exit status of the channel's script when the admin socket is missing or not writable. */
export const NO_SOCKET = 90;

/**
 * $1 the admin socket. Connects its stdin and stdout to HAProxy's admin socket on the balancer
 * host (socat if installed, else a few lines of Node) and stays connected: nexus then speaks the
 * CLI's interactive mode over it (RuntimeChannel), one SSH channel for every command of a deploy.
 */
export const CHANNEL_SCRIPT = withProgram(
  scriptFile(import.meta.url, "channel.sh"),
  scriptFile(import.meta.url, "socket-client.cjs"),
);

/** The channel to `socket`, under `sh -c` (script) whatever the login shell of the balancer host's user (fish, csh…). */
export function channelScript(socket: string): string {
  return script(CHANNEL_SCRIPT, socket);
}

/**
 * $1 the state file: written from stdin (a full `show servers state`: all backends, as
 * `load-server-state-from-file global` expects) through a temporary file, so HAProxy never reads
 * half a file.
 */
export const WRITE_STATE_FILE_SCRIPT = scriptFile(import.meta.url, "write-state-file.sh");

export function writeStateFileScript(file: string): string {
  return script(WRITE_STATE_FILE_SCRIPT, file);
}

/** `set server` commands answer nothing when they succeed, and a sentence when they do not. */
export function setServerState(backend: string, server: string, state: "ready" | "drain" | "maint"): string {
  return `set server ${backend}/${server} state ${state}`;
}

/**
 * `shutdown sessions server B/S`: closes every session HAProxy holds on the server (level admin;
 * answers nothing when it works). What a drain does at its timeout to long-lived connections.
 */
export function shutdownServerSessions(backend: string, server: string): string {
  return `shutdown sessions server ${backend}/${server}`;
}

/** `set server B/S weight N`: 0 keeps a line out of the balancing whatever its state (the surge standby). */
export function setServerWeight(backend: string, server: string, weight: number): string {
  return `set server ${backend}/${server} weight ${weight}`;
}

/**
 * `set server B/S addr IP port PORT` (the surge strategy's switch, no reload): from "host:port"
 * or "[v6]:port". HAProxy answers a sentence either way: `addressChangeRefused` tells them apart.
 */
export function setServerAddress(backend: string, server: string, address: string): string {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!match) throw new Error(`not a "host:port" address: ${address}`);
  return `set server ${backend}/${server} addr ${match[1]} port ${match[2]}`;
}

/**
 * The reply to `set server … addr`, as a refusal, or undefined when it worked ("IP changed from
 * …", "port changed from …", "no need to change the addr…").
 */
export function addressChangeRefused(reply: string): string | undefined {
  const text = reply.trim();
  if (text === "" || /changed from|no need to change/i.test(text)) return undefined;
  return text;
}
