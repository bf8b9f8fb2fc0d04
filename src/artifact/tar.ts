import { lstat, open, readlink } from "node:fs/promises";
import path from "node:path";
import type { Writable } from "node:stream";

/**
 * A tar writer for the artifact: regular files and symlinks only (the selection has no directory
 * entries: tar creates the parents), POSIX ustar headers, a pax header where a name or link target
 * does not fit ustar (long, or not ASCII) or a file is 8 GiB or more. Metadata is portable, as
 * node-tar's `portable` writes it: no owner, group, atime or ctime; mode with the owner's read and
 * write bits set and no group or world write; mtime in seconds.
 *
 * Why not node-tar: it reads each file into a Buffer of its own, and V8 frees those only when the
 * young generation is collected, which its rule for external memory puts off until ~32 MB of them
 * are dead: +30 MB of RSS on a 200 MB app. Here files are read into two blocks reused from the
 * first file to the last (one filled while gzip compresses the other): the same archive, ~30 MB
 * less memory, and a little faster (docs/benchmarks-transfer.md).
 */

const BLOCK = 512;
/** Bytes of archive handed to gzip at a time; two such buffers exist. */
const CHUNK = 256 * 1024;
const MAX_OCTAL_SIZE = 0o77777777777;

export interface TarEntry {
  /** Relative to the root, "/"-separated. */
  path: string;
}

/**
 * Writes the tar archive of `entries` (relative to `root`) into `out` (a gzip stream), then ends it.
 * `failed` rejects when the output fails (its pipeline), so that a write waiting on it gives up.
 */
export async function writeTar(
  root: string,
  entries: readonly TarEntry[],
  out: Writable,
  failed: Promise<never>,
): Promise<void> {
  const writer = new ChunkWriter(out, failed);
  for (const entry of entries) {
    const full = path.join(root, entry.path);
    const info = await lstat(full);
    const mode = portableMode(info.mode);
    const mtime = Math.floor(info.mtimeMs / 1000);
    if (info.isSymbolicLink()) {
      await writer.header({
        path: entry.path,
        mode,
        size: 0,
        mtime,
        type: "2",
        linkpath: await readlink(full),
      });
      continue;
    }
    if (!info.isFile()) throw new Error(`${entry.path} is no longer a file or a symlink`);
    const file = await open(full, "r");
    try {
      // The size when opened: a file that grows meanwhile ships as it was; one that shrinks fails.
      const { size } = await file.stat();
      await writer.header({ path: entry.path, mode, size, mtime, type: "0" });
      let position = 0;
      while (position < size) {
        const room = await writer.room();
        const { bytesRead } = await file.read(room, 0, Math.min(room.length, size - position), position);
        if (bytesRead === 0)
          throw new Error(`${entry.path} changed while it was packed (shorter than ${size} bytes)`);
        writer.advance(bytesRead);
        position += bytesRead;
      }
      await writer.zeros((BLOCK - (size % BLOCK)) % BLOCK);
    } finally {
      await file.close();
    }
  }
  // The end of the archive: two zero blocks.
  await writer.zeros(2 * BLOCK);
  await writer.finish();
}

/** node-tar's `portable` mode: owner read/write on, group/world write off. */
export function portableMode(mode: number): number {
  return ((mode & 0o7777) | 0o600) & ~0o22;
}

interface Header {
  path: string;
  mode: number;
  size: number;
  mtime: number;
  /** "0" file, "2" symlink, "x" pax extended header. */
  type: "0" | "2" | "x";
  linkpath?: string;
}

/**
 * The 512-byte header(s) of an entry: a pax header first when the ustar fields cannot hold the
 * path, link target or size. Returns the bytes to write (a multiple of 512).
 */
export function encodeHeader(header: Header): Buffer {
  const records: string[] = [];
  const split = splitPath(header.path);
  if (!split) records.push(paxRecord("path", header.path));
  const linkFits = header.linkpath === undefined || fitsUstar(header.linkpath, 100);
  if (!linkFits) records.push(paxRecord("linkpath", header.linkpath as string));
  const sizeFits = header.size <= MAX_OCTAL_SIZE;
  if (!sizeFits) records.push(paxRecord("size", String(header.size)));

  const ustar = Buffer.alloc(BLOCK);
  const [prefix, name] = split ?? ["", asciiPrefix(path.posix.basename(header.path), 100)];
  ustar.write(name, 0, 100, "ascii");
  octal(ustar, 100, 8, header.mode);
  octal(ustar, 108, 8, 0); // uid
  octal(ustar, 116, 8, 0); // gid
  octal(ustar, 124, 12, sizeFits ? header.size : 0);
  octal(ustar, 136, 12, header.mtime);
  ustar.write(header.type, 156, 1, "ascii");
  if (header.linkpath !== undefined)
    ustar.write(linkFits ? header.linkpath : asciiPrefix(header.linkpath, 100), 157, 100, "ascii");
  ustar.write("ustar\u000000", 257, 8, "ascii");
  ustar.write(prefix, 345, 155, "ascii");
  checksum(ustar);
  if (records.length === 0) return ustar;

  const body = Buffer.from(records.join(""), "utf8");
  const pax = encodeHeader({
    path: `PaxHeader/${asciiPrefix(path.posix.basename(header.path), 90)}`,
    mode: 0o644,
    size: body.length,
    mtime: header.mtime,
    type: "x",
  });
  const padded = Buffer.alloc(Math.ceil(body.length / BLOCK) * BLOCK);
  body.copy(padded);
  return Buffer.concat([pax, padded, ustar]);
}

/** [prefix, name] for ustar (name ≤ 100 bytes, prefix ≤ 155, split at a "/"), or undefined. */
function splitPath(p: string): [string, string] | undefined {
  if (!isAscii(p)) return undefined;
  if (p.length <= 100) return ["", p];
  for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
    if (i <= 155 && p.length - i - 1 <= 100 && p.length - i - 1 > 0) return [p.slice(0, i), p.slice(i + 1)];
  }
  return undefined;
}

function fitsUstar(value: string, size: number): boolean {
  return isAscii(value) && value.length <= size;
}

function isAscii(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value);
}

/** A stand-in for the ustar field when a pax record carries the real value. */
function asciiPrefix(value: string, size: number): string {
  return value.replace(/[^\x20-\x7e]/g, "_").slice(0, size);
}

/** "<length> <key>=<value>\n", the length counting itself, in bytes. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(rest);
  const digits = String(bytes).length;
  let length = bytes + digits;
  if (String(length).length > digits) length += 1; // 98 + "100" is 101 bytes: "101 ..."
  return `${length}${rest}`;
}

function octal(buffer: Buffer, offset: number, size: number, value: number): void {
  buffer.write(`${value.toString(8).padStart(size - 1, "0")}\0`, offset, size, "ascii");
}

function checksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
}

/**
 * Fills a chunk of archive and hands it to `out` when full, then fills the other one; a chunk is
 * filled again only once `out` has consumed it (its write callback: zlib is done with the input).
 */
class ChunkWriter {
  private readonly chunks: [Buffer, Buffer] = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
  private readonly written: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  private current: 0 | 1 = 0;
  private offset = 0;

  constructor(
    private readonly out: Writable,
    private readonly failed: Promise<never>,
  ) {}

  async header(header: Header): Promise<void> {
    await this.copy(encodeHeader(header));
  }

  async zeros(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      const room = await this.room();
      const n = Math.min(left, room.length);
      room.fill(0, 0, n);
      this.advance(n);
      left -= n;
    }
  }

  /** The free part of the current chunk (never empty): fill its start, then call advance(). */
  async room(): Promise<Buffer> {
    if (this.offset === CHUNK) await this.flush();
    return this.chunks[this.current].subarray(this.offset);
  }

  advance(count: number): void {
    this.offset += count;
  }

  async finish(): Promise<void> {
    await this.flush();
    await Promise.race([Promise.all(this.written), this.failed]);
    this.out.end();
  }

  private async copy(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const room = await this.room();
      const n = bytes.copy(room, 0, done);
      this.advance(n);
      done += n;
    }
  }

  private async flush(): Promise<void> {
    if (this.offset === 0) return;
    const chunk = this.chunks[this.current].subarray(0, this.offset);
    const written = new Promise<void>((resolve, reject) =>
      this.out.write(chunk, (error) => (error ? reject(error) : resolve())),
    );
    written.catch(() => {}); // awaited later (or the output's own error is reported instead)
    this.written[this.current] = written;
    this.current = this.current === 0 ? 1 : 0;
    this.offset = 0;
    await Promise.race([this.written[this.current], this.failed]);
  }
}
