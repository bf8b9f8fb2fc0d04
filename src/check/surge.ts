import { parseLivePort } from "../remote/live-port.js";
import { script } from "../remote/op.js";
import { scriptFile } from "../remote/script-file.js";
import type { CheckItem } from "./types.js";

/** $1 the deploy path: the surge strategy's live-port record, and the ports something listens on. */
export const SURGE_PORTS_SCRIPT = scriptFile(import.meta.url, "surge-ports.sh");

export function surgePortsScript(deployPath: string): string {
  return script(SURGE_PORTS_SCRIPT, deployPath);
}

export interface SurgePorts {
  /** The port recorded as serving, if any. */
  live?: number;
  listening: number[];
}

export function parseSurgePorts(text: string): SurgePorts {
  const out: SurgePorts = { listening: [] };
  for (const line of text.split("\n")) {
    const [word, value = ""] = line.trim().split(" ");
    if (word === "live") {
      const live = parseLivePort(value);
      if (live !== undefined) out.live = live;
    } else if (word === "listen" && /^\d+$/.test(value)) out.listening.push(Number(value));
  }
  return out;
}

/**
 * The surge strategy's two ports on a server: the one the next surge starts on must be free, and
 * the app (once deployed) must listen on the one serving, which tells it honours PORT.
 */
export function surgePortsItem(
  target: string,
  found: SurgePorts,
  ports: { port: number; surgePort: number },
  deployed: boolean,
): CheckItem {
  const live = found.live ?? ports.port;
  const next = live === ports.surgePort ? ports.port : ports.surgePort;
  const base = { target, check: "surge ports" };
  if (found.listening.includes(next))
    return {
      ...base,
      status: "fail",
      detail: `port ${next} (where the next surge starts the release) is in use`,
      fix: `stop what listens there (\`ss -ltnp 'sport = :${next}'\`), or set app.surgePort to a free port`,
    };
  if (deployed && !found.listening.includes(live))
    return {
      ...base,
      status: "fail",
      detail: `nothing listens on port ${live}, where the app should serve`,
      fix: "the app must listen on process.env.PORT: nexus sets it to app.port or app.surgePort per process",
    };
  return {
    ...base,
    status: "ok",
    detail: `${deployed ? `serving on ${live}` : `nothing deployed: ${live} first`}; ${next} free for the next surge`,
  };
}
