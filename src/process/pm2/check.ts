import type { Facts } from "../../check/facts.js";
import { SAY_FUNCTION } from "../../check/facts.js";
import { programItem } from "../../check/server-checks.js";
import type { CheckItem } from "../../check/types.js";
import type { Config, ServerConfig } from "../../config/load.js";
import { script } from "../../remote/op.js";
import { procNetTcpAddress, procNetTcpPort } from "../../remote/proc-net-tcp.js";
import { scriptFile, withFunctions } from "../../remote/script-file.js";
import type { ProcessManagerCheck } from "../driver.js";

/**
 * $1 the app port and $2 the app's address as /proc/net/tcp writes them (hex; $2 empty when the
 * address is not an IPv4 literal: a listener on any address conflicts then), $3 the PM2 app name.
 * Read-only facts about PM2 on a server: its program and version, its boot-time unit, and who
 * holds the app port (this app, PM2, or another process).
 */
export const PM2_CHECK_SCRIPT = withFunctions(scriptFile(import.meta.url, "check.sh"), SAY_FUNCTION);

export interface Pm2ScriptInput {
  appPort: number;
  /** The address the app listens on (the upstream's host); only a listener there or on all addresses conflicts. */
  appHost: string;
  pm2Name: string;
}

export interface Pm2CheckContext {
  server: string;
  appPort: number;
  pm2Name: string;
}

/** The PM2 check script's arguments: the port and the address in /proc/net/tcp's hex. */
export function pm2CheckArgs(ctx: Pm2ScriptInput): string[] {
  const ip = procNetTcpAddress(`${ctx.appHost}:${ctx.appPort}`)?.split(":")[0] ?? "";
  return [procNetTcpPort(ctx.appPort), ip, ctx.pm2Name];
}

export function pm2CheckScript(ctx: Pm2ScriptInput): string {
  return script(PM2_CHECK_SCRIPT, ...pm2CheckArgs(ctx));
}

/** PM2 found, started at boot, and the app port free or held by this app. */
export function pm2Items(facts: Facts, ctx: Pm2CheckContext): CheckItem[] {
  const v = facts.values;
  const items: CheckItem[] = [
    programItem(
      facts,
      ctx.server,
      "pm2",
      "install PM2 for the login user (npm install -g pm2) where a non-interactive SSH command finds it (e.g. /usr/local/bin), or add its directory to PATH at the top of ~/.bashrc",
    ),
  ];
  const add = (check: string, status: CheckItem["status"], detail: string, fix?: string) =>
    items.push({ target: ctx.server, check, status, detail, ...(fix ? { fix } : {}) });

  const unit = v.get("pm2_unit");
  const enabled = v.get("pm2_unit_enabled");
  if (unit && (enabled === undefined || enabled === "enabled")) add("pm2 startup", "ok", unit);
  else
    add(
      "pm2 startup",
      "warn",
      unit
        ? `${unit} is ${enabled || "not enabled"}`
        : `no pm2-${v.get("user") ?? "<user>"} systemd unit: after a reboot the app does not come back`,
      "run `pm2 startup` as the login user and the command it prints as root, then `pm2 save`",
    );

  const holder = v.get("port_holder");
  const listeners = Number.parseInt(v.get("port_listeners") ?? "0", 10) || 0;
  if (listeners === 0) add("app port", "ok", `${ctx.appPort} free`);
  else if (!holder || holder === "app" || holder === "pm2")
    add("app port", "ok", `${ctx.appPort} held by this app (PM2 ${ctx.pm2Name})`);
  else
    add(
      "app port",
      "fail",
      `${ctx.appPort} is held by another process${holder !== "other" ? ` (${holder})` : " (another user's)"}, not by PM2 app ${ctx.pm2Name}`,
      `stop it (as root, \`ss -ltnp 'sport = :${ctx.appPort}'\` names it), or set app.port to a free port`,
    );
  return items;
}

/** `nexus check` of PM2 on one server (process/driver.ts). */
export function pm2Check(config: Config, server: ServerConfig): ProcessManagerCheck {
  const context = { appPort: config.app.port, pm2Name: config.pm2.name };
  // The app's address as its upstream names it: only a listener there (or on all addresses) holds its port.
  const appHost = server.upstream.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return {
    script: pm2CheckScript({ ...context, appHost }),
    items: (facts) => pm2Items(facts, { ...context, server: server.name }),
  };
}
