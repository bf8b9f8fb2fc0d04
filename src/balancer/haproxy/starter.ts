import type { StarterSpec } from "../driver.js";

const DEFAULT_SOCKET = "/run/haproxy/admin.sock";

/** A backend name HAProxy accepts, from the app name. */
const backendName = (name: string) => name.replace(/[^A-Za-z0-9_.:-]/g, "_");

/** `nexus init` for HAProxy: the backend of the servers and the admin socket. */
export const haproxyStarter: StarterSpec = {
  label: "HAProxy",
  configFor: "the backend and admin socket",
  options: [
    { flags: "--backend <name>", description: "HAProxy: the backend of the servers (default: the app name)" },
    { flags: "--socket <path>", description: `HAProxy: its admin socket (default: ${DEFAULT_SOCKET})` },
  ],
  async ask(answers, ask) {
    answers.values.backend ??= await ask("HAProxy backend of the servers", backendName(answers.name));
    answers.values.socket ??= await ask("its admin socket (stats socket ... level admin)", DEFAULT_SOCKET);
  },
  entry({ name, host, values }) {
    return {
      type: "haproxy",
      host,
      backend: values.backend ?? backendName(name),
      ...(values.socket ? { socket: values.socket } : {}),
    };
  },
};
