import { shq } from "../remote/quote.js";
import type { Facts } from "./facts.js";
import type { CheckItem } from "./types.js";

export interface ServerCheckContext {
  server: string;
  deployPath: string;
  appPort: number;
  pm2Name: string;
  /** Bytes: the packed app, and its size on disk (extracted). */
  artifactEstimate: number;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return bytes < MB ? "<1 MB" : `${Math.round(bytes / MB)} MB`;
}

export function serverItems(facts: Facts, ctx: ServerCheckContext): CheckItem[] {
  const v = facts.values;
  const items: CheckItem[] = [];
  const add = (check: string, status: CheckItem["status"], detail: string, fix?: string) =>
    items.push({ target: ctx.server, check, status, detail, ...(fix ? { fix } : {}) });

  const nvm = v.get("nvm_bin");
  const pathFix = (bin: string) =>
    nvm
      ? `${bin} is installed by nvm in ${nvm}, which only interactive shells put on the PATH: add \`export PATH=${nvm}:$PATH\` at the top of ~/.bashrc (before its "If not running interactively" return), or link it: sudo ln -s ${nvm}/${bin} /usr/local/bin/${bin}`
      : bin === "pm2"
        ? "install PM2 for the login user (npm install -g pm2) where a non-interactive SSH command finds it (e.g. /usr/local/bin), or add its directory to PATH at the top of ~/.bashrc"
        : `install Node.js (distro package or nodesource) so that \`ssh <user>@<host> ${bin} -v\` works; with nvm, add its bin directory to PATH at the top of ~/.bashrc`;
  for (const bin of ["node", "npm", "pm2"] as const) {
    const where = v.get(`${bin}_path`);
    if (where) add(bin, "ok", `${v.get(`${bin}_version`) ?? "?"} (${where})`);
    else add(bin, "fail", `not found on the non-interactive PATH (${v.get("path") ?? "?"})`, pathFix(bin));
  }

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

  const existing = v.get("deploy_existing") ?? "?";
  const creates = existing !== ctx.deployPath ? ` (creates it under ${existing})` : "";
  if (v.get("deploy_writable") === "1") add("deploy path", "ok", `${ctx.deployPath} writable${creates}`);
  else
    add(
      "deploy path",
      "fail",
      `${existing} is not writable by ${v.get("user") ?? "the login user"} (${v.get("deploy_owner") ?? "?"})`,
      `as root on the server: \`mkdir -p ${shq(ctx.deployPath)} && chown ${shq(v.get("user") ?? "<user>")}: ${shq(ctx.deployPath)}\`; or set deployPath under the user's home ("~/apps/<name>")`,
    );

  const freeKb = Number.parseInt(v.get("free_kb") ?? "", 10);
  if (Number.isFinite(freeKb)) {
    const free = freeKb * 1024;
    // A release is the extracted app plus its node_modules; keep room for staging one more.
    const need = ctx.artifactEstimate * 3;
    if (free < need)
      add(
        "disk",
        "fail",
        `${mb(free)} free under ${existing}, a release needs about ${mb(need)}`,
        "free space on that filesystem, or lower keepReleases so nexus prunes older releases",
      );
    else add("disk", "ok", `${mb(free)} free (a release: about ${mb(need)})`);
  } else add("disk", "warn", "could not read the free space (df)");

  const holders = [...(v.get("port_holder") ? [v.get("port_holder") as string] : [])];
  const listeners = Number.parseInt(v.get("port_listeners") ?? "0", 10) || 0;
  if (listeners === 0) add("app port", "ok", `${ctx.appPort} free`);
  else if (holders.every((h) => h === "app" || h === "pm2"))
    add("app port", "ok", `${ctx.appPort} held by this app (PM2 ${ctx.pm2Name})`);
  else
    add(
      "app port",
      "fail",
      `${ctx.appPort} is held by another process${holders[0] && holders[0] !== "other" ? ` (${holders[0]})` : " (another user's)"}, not by PM2 app ${ctx.pm2Name}`,
      `stop it (as root, \`ss -ltnp 'sport = :${ctx.appPort}'\` names it), or set app.port to a free port`,
    );
  return items;
}
