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

/** `show stat` CSV: a "# pxname,svname,…" header, then one row per frontend, backend and server. */
export function parseShowStat(text: string): ServerStat[] {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  const header = lines.find((line) => line.startsWith("# "));
  if (!header) throw new Error(`not a "show stat" reply: ${text.slice(0, 200)}`);
  const columns = header.slice(2).split(",");
  const at = (name: string) => columns.indexOf(name);
  const [px, sv, scur, qcur, status] = ["pxname", "svname", "scur", "qcur", "status"].map(at) as number[];
  if ([px, sv, scur, status].some((index) => index === undefined || index < 0)) {
    throw new Error(`"show stat" header lacks pxname, svname, scur or status: ${header}`);
  }
  const stats: ServerStat[] = [];
  for (const line of lines) {
    if (line.startsWith("#")) continue;
    const fields = line.split(",");
    const server = fields[sv as number] ?? "";
    if (server === "FRONTEND" || server === "BACKEND") continue;
    stats.push({
      backend: fields[px as number] ?? "",
      server,
      sessions: Number.parseInt(fields[scur as number] ?? "", 10) || 0,
      queued: (qcur ?? -1) >= 0 ? Number.parseInt(fields[qcur as number] ?? "", 10) || 0 : 0,
      status: fields[status as number] ?? "",
    });
  }
  return stats;
}

/** Administrative state bits of `srv_admin_state` (HAProxy's SRV_ADMF_*). */
const ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const ADMIN_DRAIN = 0x08 | 0x10;

export interface ServerState {
  backend: string;
  server: string;
  address: string;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  operational: number;
  admin: number;
  maint: boolean;
  drain: boolean;
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
      return {
        backend: fields[index.backend] ?? "",
        server: fields[index.server] ?? "",
        address: fields[index.address] ?? "",
        operational: Number.parseInt(fields[index.operational] ?? "", 10) || 0,
        admin,
        maint: (admin & ADMIN_MAINT) !== 0,
        drain: (admin & ADMIN_DRAIN) !== 0,
      };
    });
}
