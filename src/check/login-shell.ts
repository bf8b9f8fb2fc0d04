import { script } from "../remote/op.js";
import { scriptFile } from "../remote/script-file.js";
import type { SshSession } from "../ssh/session.js";
import type { CheckItem } from "./types.js";

/** A login shell slower than this to start is named: nexus pays it once per server and command. */
export const SLOW_LOGIN_SHELL_MS = 150;

/**
 * How long a bare command takes on the server: on an exec channel of its own (sshd's session, the
 * user's login shell and what it reads: ~/.bashrc, the PAM session modules) against one exchange
 * with nexus's remote shell (a round trip). The difference is the login shell's start, named when
 * it is slow, with the time ~/.bashrc alone takes when bash reads one.
 */
export async function loginShellItem(session: SshSession, server: string): Promise<CheckItem> {
  const time = async (run: () => Promise<unknown>) => {
    const started = performance.now();
    await run();
    return performance.now() - started;
  };
  const channel = await time(() => session.execOnChannel("true", { what: "timing a bare command" }));
  const exchange = await time(() => session.exec("true", { what: "timing a bare command" }));
  const start = Math.max(0, channel - exchange);
  const ms = (value: number) => `${Math.round(value)} ms`;
  const detail = `a bare command: ${ms(channel)} on an exec channel, ${ms(exchange)} through nexus's remote shell`;
  if (start < SLOW_LOGIN_SHELL_MS) return { target: server, check: "login shell", status: "ok", detail };
  const bashrc = await session
    .exec(script(BASHRC_TIME_SCRIPT), { what: "timing ~/.bashrc" })
    .catch(() => undefined);
  const seconds = Number(/^([\d.]+)$/m.exec(bashrc?.stdout ?? "")?.[1]);
  const shell =
    (await session.exec('printf %s "$SHELL"').catch(() => undefined))?.stdout.trim() || "the login shell";
  const culprit = Number.isFinite(seconds)
    ? `; ~/.bashrc alone takes ${ms(seconds * 1000)} (bash reads it for every command sshd runs)`
    : "";
  return {
    target: server,
    check: "login shell",
    status: "warn",
    detail: `${shell} takes ~${ms(start)} to start for each command sshd runs (${detail})${culprit}`,
    fix: "nexus starts it once per server and command; every ssh-based tool pays it per command: move slow inits (nvm, pyenv, conda) behind a check for an interactive shell (see docs/servers.md)",
  };
}

/** Seconds bash takes to read ~/.bashrc, as `time` says it; nothing without bash or the file. */
export const BASHRC_TIME_SCRIPT = scriptFile(import.meta.url, "bashrc-time.sh");
