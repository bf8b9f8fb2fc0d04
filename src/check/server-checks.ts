import type { PackageManager } from "../artifact/package-manager.js";
import { shq } from "../remote/quote.js";
import type { Facts } from "./facts.js";
import type { CheckItem } from "./types.js";

export interface ServerCheckContext {
  server: string;
  deployPath: string;
  /** The app's package manager (undefined: no package.json, or npm's own item says it). */
  packageManager?: PackageManager;
  /** Bytes: the packed app, and its size on disk (extracted). */
  artifactEstimate: number;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return bytes < MB ? "<1 MB" : `${Math.round(bytes / MB)} MB`;
}

/**
 * A program nexus runs on the server, found on the non-interactive PATH or not: the fix for one
 * that nvm installed names its directory (only interactive shells put it on the PATH); else
 * `install` says how to get it.
 */
export function programItem(facts: Facts, target: string, program: string, install: string): CheckItem {
  const v = facts.values;
  const where = v.get(`${program}_path`);
  if (where)
    return {
      target,
      check: program,
      status: "ok",
      detail: `${v.get(`${program}_version`) ?? "?"} (${where})`,
    };
  const nvm = v.get("nvm_bin");
  return {
    target,
    check: program,
    status: "fail",
    detail: `not found on the non-interactive PATH (${v.get("path") ?? "?"})`,
    fix: nvm
      ? `${program} is installed by nvm in ${nvm}, which only interactive shells put on the PATH: add \`export PATH=${nvm}:$PATH\` at the top of ~/.bashrc (before its "If not running interactively" return), or link it: sudo ln -s ${nvm}/${program} /usr/local/bin/${program}`
      : install,
  };
}

/** Node and npm, the deploy path and the disk: what every server needs whatever runs the app. */
export function serverItems(facts: Facts, ctx: ServerCheckContext): CheckItem[] {
  const v = facts.values;
  const items: CheckItem[] = ["node", "npm"].map((program) =>
    programItem(
      facts,
      ctx.server,
      program,
      `install Node.js (distro package or nodesource) so that \`ssh <user>@<host> ${program} -v\` works; with nvm, add its bin directory to PATH at the top of ~/.bashrc`,
    ),
  );
  const add = (check: string, status: CheckItem["status"], detail: string, fix?: string) =>
    items.push({ target: ctx.server, check, status, detail, ...(fix ? { fix } : {}) });
  const pm = packageManagerItem(facts, ctx);
  if (pm) items.push(pm);

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
  return items;
}

/**
 * pnpm or Yarn, when the app installs with one: on the PATH, or runnable through corepack when the
 * app pins a version. (npm comes with Node: its item is above.) The version is not asked for: a
 * corepack shim would download one to answer, and a check changes nothing.
 */
export function packageManagerItem(facts: Facts, ctx: ServerCheckContext): CheckItem | undefined {
  const pm = ctx.packageManager;
  if (!pm || pm.name === "npm") return undefined;
  const v = facts.values;
  const where = v.get(`${pm.name}_path`);
  const corepack = v.get("corepack_path");
  const item = { target: ctx.server, check: pm.name };
  if (where)
    return {
      ...item,
      status: "ok",
      detail: `${where}${pm.pinned && corepack ? ` (the app pins ${pm.pinned}: run through corepack when the server's differs)` : ""}`,
    };
  if (pm.pinned && corepack)
    return {
      ...item,
      status: "ok",
      detail: `not on the PATH; corepack (${corepack}) runs ${pm.name}@${pm.pinned}`,
    };
  return {
    ...item,
    status: "fail",
    detail: `the app installs with ${pm.label}, and ${pm.name} is not on the non-interactive PATH (${v.get("path") ?? "?"})`,
    fix: `as root on the server: \`npm install -g ${pm.name}${pm.pinned ? `@${pm.pinned}` : ""}\`, or \`corepack enable\` (Node's corepack provides pnpm and yarn)`,
  };
}
