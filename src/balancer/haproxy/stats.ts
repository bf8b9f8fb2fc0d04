/** Pure parsers for HAProxy runtime API replies. */

export interface ServerStat {
  backend: string;
  server: string;
  /** Current sessions (`scur`). */
  sessions: number;
  /** Requests queued for the server (`qcur`). */
  queued: number;
  /** "UP", "DOWN", "MAINT", "DRAIN", "no check", "UP 1/3" … */
  status: string;
}

/**
 * The server rows of a `show stat` CSV reply (a "# pxname,svname,…" header, then one row per
 * frontend, backend and server), each as column name → cell. Columns are found by their header
 * name, so versions that add columns read alike.
 */
export function showStatServerRows(text: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== "");
  const header = lines.find((line) => line.startsWith("# "));
  if (!header) throw new Error(`not a "show stat" reply: ${text.slice(0, 200)}`);
  const columns = header.slice(2).split(",");
  if (!columns.includes("pxname") || !columns.includes("svname"))
    throw new Error(`"show stat" header lacks pxname or svname: ${header}`);
  const rows: Record<string, string>[] = [];
  for (const line of lines) {
    if (line.startsWith("#")) continue;
    const cells = line.split(",");
    const row = Object.fromEntries(columns.map((name, i) => [name, cells[i] ?? ""]));
    if (row.svname === "FRONTEND" || row.svname === "BACKEND" || !row.svname) continue;
    rows.push(row);
  }
  return rows;
}

/** A counter cell of a `show stat` row; empty or missing counts as 0. */
export function statNumber(row: Record<string, string>, column: string): number {
  const value = Number.parseInt(row[column] ?? "", 10);
  return Number.isFinite(value) ? value : 0;
}

/** Sessions, queue and status of each server: what a drain waits on. */
export function parseShowStat(text: string): ServerStat[] {
  return showStatServerRows(text).map((row) => {
    if (row.scur === undefined || row.status === undefined)
      throw new Error(`"show stat" reply lacks scur or status: ${text.slice(0, 200)}`);
    return {
      backend: row.pxname ?? "",
      server: row.svname ?? "",
      sessions: statNumber(row, "scur"),
      queued: statNumber(row, "qcur"),
      status: row.status,
    };
  });
}

/**
 * Administrative state bits of `srv_admin_state` (HAProxy's SRV_ADMF_*). Maintenance is HAProxy's
 * own mask, SRV_ADMF_MAINT = FMAINT 0x01 | IMAINT 0x02 | RMAINT 0x20: CMAINT (0x04, "disabled" in
 * the config) stays set after `state ready` though the server takes traffic again (the surge
 * standby lines are written `disabled`), and HMAINT (0x40) only says the FQDN was set at run time.
 */
const ADMIN_MAINT = 0x01 | 0x02 | 0x20;
const ADMIN_DRAIN = 0x08 | 0x10;

export interface ServerState {
  backend: string;
  /** The backend's numeric id (`be_id`), if the reply has it. */
  backendId?: number;
  server: string;
  address: string;
  /** srv_port, when the reply has it. */
  port?: number;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  operational: number;
  admin: number;
  maint: boolean;
  drain: boolean;
  /** srv_uweight, the weight set at run time (0: never picked), when the reply has it. */
  weight?: number;
}

/**
 * `show servers state [backend]`: a version line ("1"), a "# be_id be_name srv_id srv_name …"
 * header, then space-separated rows.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  const header = lines.find((line) => line.startsWith("# "));
  if (!header || lines[0]?.trim() !== "1") {
    throw new Error(`not a "show servers state" reply (version 1): ${text.slice(0, 200)}`);
  }
  const columns = header.slice(2).trim().split(/\s+/);
  const at = (name: string) => columns.indexOf(name);
  const backendId = at("be_id");
  const portAt = at("srv_port");
  const weightAt = at("srv_uweight");
  const index = {
    backend: at("be_name"),
    server: at("srv_name"),
    address: at("srv_addr"),
    operational: at("srv_op_state"),
    admin: at("srv_admin_state"),
  };
  if (Object.values(index).some((i) => i < 0)) {
    throw new Error(`"show servers state" header lacks a column: ${header}`);
  }
  return lines
    .filter((line) => !line.startsWith("#") && line.trim() !== "1")
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      const admin = Number.parseInt(fields[index.admin] ?? "", 10) || 0;
      const id = backendId < 0 ? Number.NaN : Number.parseInt(fields[backendId] ?? "", 10);
      const port = portAt < 0 ? Number.NaN : Number.parseInt(fields[portAt] ?? "", 10);
      const weight = weightAt < 0 ? Number.NaN : Number.parseInt(fields[weightAt] ?? "", 10);
      return {
        backend: fields[index.backend] ?? "",
        ...(Number.isInteger(id) && id > 0 ? { backendId: id } : {}),
        server: fields[index.server] ?? "",
        address: fields[index.address] ?? "",
        ...(Number.isInteger(port) && port > 0 ? { port } : {}),
        operational: Number.parseInt(fields[index.operational] ?? "", 10) || 0,
        admin,
        maint: (admin & ADMIN_MAINT) !== 0,
        drain: (admin & ADMIN_DRAIN) !== 0,
        ...(Number.isInteger(weight) && weight >= 0 ? { weight } : {}),
      };
    });
}
