import type { Artifact } from "../artifact/pack.js";
import type { Config } from "../config/load.js";
import { NexusError } from "../errors.js";
import type { Emit } from "../events/events.js";
import { cmd } from "../remote/quote.js";
import { sha256Of } from "../remote/sha256.js";
import { SshError } from "../ssh/errors.js";
import type { SshSession, UploadOptions } from "../ssh/session.js";
import { FETCH_EXIT, type Fetcher, fetchCommand, fetchInput } from "./fetch-command.js";
import { ArtifactServer, baseUrl, type ListenAddress, type Offer, parseListen } from "./http-server.js";

export type TransferMethod = Config["transfer"]["method"];

export interface TransferOptions {
  method: TransferMethod;
  /** "host:port" for the HTTP fallback; default: this end of the host's SSH connection, any port. */
  listen?: string;
  /** Base URL the server fetches from; default http://<listen address>. */
  url?: string;
  /** How long one server may take to fetch the artifact over HTTP. */
  timeout: number;
  emit?: Emit;
  /** SFTP tuning. */
  sftp?: Pick<UploadOptions, "concurrency" | "chunkSize">;
  /** Which HTTP clients the server may use, in order (default curl, wget, node). */
  fetchers?: readonly Fetcher[];
  /** Ctrl-C: the upload stops, or the HTTP offer is withdrawn (its download cut); no fallback. */
  signal?: AbortSignal;
}

/** A transfer that failed for good: the archive is not on the server under its final name. */
export class TransferError extends NexusError {
  constructor(
    readonly server: string,
    message: string,
  ) {
    super(`${server}: ${message}`);
  }
}

export interface Bind {
  listen: ListenAddress;
  advertiseHost?: string;
}

interface TransferHost {
  session: SshSession;
  server: { name: string };
}

/**
 * Puts the artifact at `archive` on the host, verified: when this resolves, the file there has
 * the artifact's sha256, checked on the server. SFTP first (parallel writes to `.part`, then a
 * rename); with method "auto", if SFTP is unavailable, fails, or the server computes another
 * sha256, the server fetches it over HTTP from nexus instead (once). A bad file is removed, never
 * left for extraction. Resolves to a note for the step line ("sftp, 41.2 MB/s").
 */
export async function transferArtifact(
  host: TransferHost,
  artifact: Artifact,
  archive: string,
  options: TransferOptions,
): Promise<string> {
  const name = host.server.name;
  const progress = throttledProgress(name, options.emit);
  let fallbackReason: string | undefined;

  if (options.method !== "http") {
    const started = Date.now();
    try {
      await host.session.upload(artifact.file, archive, {
        ...options.sftp,
        onProgress: progress,
        signal: options.signal,
      });
      const speed = rate(artifact.bytes, started);
      const actual = await remoteSha256(host.session, archive);
      if (actual === artifact.sha256) return `sftp, ${speed}`;
      await host.session.exec(cmd("rm", "-f", archive));
      fallbackReason = `checksum mismatch after the SFTP upload: expected ${artifact.sha256}, got ${actual || "nothing"}; the file was removed`;
    } catch (error) {
      if (error instanceof SshError || options.method === "sftp" || options.signal?.aborted) throw error;
      fallbackReason = `SFTP upload failed: ${stripServer(name, (error as Error).message)}`;
    }
    if (options.method === "sftp") throw new TransferError(name, fallbackReason);
    options.emit?.({ type: "warn", server: name, message: `${fallbackReason}; fetching over HTTP instead` });
  }

  const started = Date.now();
  await fetchOverHttp(host, artifact, archive, options, progress, fallbackReason);
  return `http${fallbackReason ? " (fallback)" : ""}, ${rate(artifact.bytes, started)}`;
}

async function fetchOverHttp(
  host: TransferHost,
  artifact: Artifact,
  archive: string,
  options: TransferOptions,
  progress: (sent: number, total: number) => void,
  fallbackReason: string | undefined,
): Promise<void> {
  const name = host.server.name;
  // A server behind a jump host cannot reach this machine: it fetches from a port of its own that
  // the SSH connection forwards back here (`ssh -R`), unless transfer.listen or .url say otherwise.
  const tunnelled = !options.listen && !options.url && !host.session.localAddress;
  let tunnel: { port: number; close(): void } | undefined;
  const { offer, base } = await offerArtifact(
    artifact,
    tunnelled ? { listen: { host: "127.0.0.1", port: 0 } } : listenAddressFor(host.session, options.listen),
    tunnelled
      ? async (localPort) => {
          tunnel = await host.session.reverseForward("127.0.0.1", localPort);
          return baseUrl("127.0.0.1", tunnel.port);
        }
      : options.url,
    options.timeout + 5_000,
    progress,
  );
  const withdraw = () => offer.withdraw();
  options.signal?.addEventListener("abort", withdraw, { once: true });
  try {
    options.signal?.throwIfAborted();
    // The URL (its token is the key to the artifact) goes on stdin: not in `ps`, not in --verbose.
    const result = await host.session.exec(
      fetchCommand({
        dest: archive,
        sha256: artifact.sha256,
        timeoutSeconds: options.timeout / 1000,
        fetchers: options.fetchers,
      }),
      { what: "fetching the artifact over HTTP", stdin: fetchInput(offer.url) },
    );
    if (result.code === 0) return;
    options.signal?.throwIfAborted();
    const detail = (result.stderr || result.stdout)
      .replaceAll(offer.token, "***")
      .trim()
      .split("\n")
      .slice(-4)
      .join("\n");
    if (result.code === FETCH_EXIT.checksum) {
      throw new TransferError(name, `${detail} (over HTTP); the file was removed, nothing extracted`);
    }
    const advice = couldNotConnect(detail)
      ? ` The server must reach ${base}: set transfer.listen / transfer.url.`
      : "";
    const before = fallbackReason ? ` (SFTP first: ${fallbackReason})` : "";
    throw new TransferError(
      name,
      `fetching the artifact from nexus failed (exit ${result.code ?? "signal"}): ${detail || "no output"}.${advice}${before}`,
    );
  } finally {
    options.signal?.removeEventListener("abort", withdraw);
    offer.withdraw();
    tunnel?.close();
  }
}

/**
 * Whether a failed fetch could not reach nexus (curl 6/7/28, wget 4, timeout(1)'s 124, node's connect errors), as
 * opposed to a server-side failure (a full disk, a permission) that no listen address would fix.
 */
export function couldNotConnect(detail: string): boolean {
  return (
    /curl failed \(exit (6|7|28)\)/.test(detail) ||
    /wget failed \(exit 4\)/.test(detail) ||
    /failed \(exit 124\)/.test(detail) ||
    /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|timed out/.test(detail)
  );
}

const servers = new Map<string, Promise<ArtifactServer>>();

/**
 * One listener per artifact and listen address: hosts reaching a wildcard listener on different
 * local addresses (a LAN and a VPN) share it, each with its own URL (a listener per URL would
 * bind the same port twice).
 */
export function listenerKey(file: string, bind: Bind): string {
  return [file, bind.listen.host, bind.listen.port].join("\0");
}

/** The base URL a host fetches from: transfer.url, else the address it reaches nexus on. */
export function offerBase(bind: Bind, advertise: string | undefined, port: number): string {
  return (advertise ?? baseUrl(bind.advertiseHost ?? bind.listen.host, port)).replace(/\/+$/, "");
}

/**
 * An offer on the listener for this artifact and address, started on first use and shared by the
 * servers fetching at the same time; it closes with its last offer.
 */
async function offerArtifact(
  artifact: Artifact,
  bind: Bind,
  /** The base URL, or how to make one from the local listener's port (a port forwarded back). */
  advertise: string | ((localPort: number) => Promise<string>) | undefined,
  timeoutMs: number,
  progress: (sent: number, total: number) => void,
): Promise<{ offer: Offer; base: string }> {
  const key = listenerKey(artifact.file, bind);
  for (;;) {
    let pending = servers.get(key);
    if (!pending) {
      pending = ArtifactServer.start({
        file: artifact.file,
        listen: bind.listen,
        onClose: () => {
          if (servers.get(key) === pending) servers.delete(key);
        },
      });
      servers.set(key, pending);
      pending.catch(() => {
        if (servers.get(key) === pending) servers.delete(key);
      });
    }
    const server = await pending;
    // It may have closed with its last offer while we waited: then start another.
    if (!server.isClosed) {
      const advertised = typeof advertise === "function" ? await advertise(server.port) : advertise;
      const base = offerBase(bind, advertised, server.port);
      return { offer: server.offer(timeoutMs, progress, base), base };
    }
  }
}

/** Where to listen, and the host to put in the URL: by default this end of the host's SSH connection. */
function listenAddressFor(session: SshSession, listen: string | undefined): Bind {
  const parsed = listen ? parseListen(listen) : undefined;
  if (parsed && !isWildcard(parsed.host)) return { listen: parsed };
  const local = session.localAddress?.replace(/^::ffff:/, "");
  if (!local) {
    throw new TransferError(
      session.name,
      'cannot tell which address the server reaches nexus on: set transfer.listen ("host:port")',
    );
  }
  return parsed ? { listen: parsed, advertiseHost: local } : { listen: { host: local, port: 0 } };
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

async function remoteSha256(session: SshSession, file: string): Promise<string> {
  const result = await session.exec(sha256Of(file));
  return result.code === 0 ? result.stdout.trim() : "";
}

function throttledProgress(server: string, emit: Emit | undefined): (sent: number, total: number) => void {
  let last = 0;
  return (sent, total) => {
    const now = Date.now();
    if (now - last > 200 || sent === total) {
      last = now;
      emit?.({ type: "progress", server, sent, total });
    }
  };
}

function rate(bytes: number, since: number): string {
  const seconds = Math.max(0.001, (Date.now() - since) / 1000);
  return `${(bytes / 1024 / 1024 / seconds).toFixed(1)} MB/s`;
}

function stripServer(server: string, message: string): string {
  return message.startsWith(`${server}: `) ? message.slice(server.length + 2) : message;
}
