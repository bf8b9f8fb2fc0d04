import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as nodeTar from "tar";
import { describe, expect, it } from "vitest";
import { selectAppFiles, writeTarball } from "../../src/artifact/pack.js";
import { encodeHeader, portableMode } from "../../src/artifact/tar.js";

// The artifact's tar writer, read back by GNU tar (what servers extract with) and node-tar.

function tree(files: Record<string, string | Buffer | { link: string } | { mode: number; text: string }>) {
  const root = mkdtempSync(join(tmpdir(), "nexus-tar-"));
  for (const [name, value] of Object.entries(files)) {
    const full = join(root, name);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof value === "object" && "link" in value) symlinkSync(value.link, full);
    else if (typeof value === "object" && "mode" in value) {
      writeFileSync(full, value.text);
      chmodSync(full, value.mode);
    } else writeFileSync(full, value);
  }
  return root;
}

async function pack(root: string) {
  const selection = await selectAppFiles(root);
  const out = join(mkdtempSync(join(tmpdir(), "nexus-tar-out-")), "release.tar.gz");
  const result = await writeTarball(root, selection.files, out);
  return { out, selection, ...result };
}

function extract(archive: string): string {
  const dir = mkdtempSync(join(tmpdir(), "nexus-tar-x-"));
  execFileSync("tar", ["-xzf", archive, "-C", dir]);
  return dir;
}

describe("writeTarball", () => {
  const deep = `deep/${"a".repeat(60)}/${"b".repeat(60)}/module.js`;
  const longName = `long/${"n".repeat(120)}.js`;
  const longTarget = `../${"t".repeat(110)}`;
  const files = {
    "a.txt": "hello\n",
    empty: "",
    "block.bin": randomBytes(512),
    "big.bin": randomBytes(600 * 1024 + 3),
    [deep]: "deep\n",
    [longName]: "long\n",
    "ünïcode/ファイル.txt": "utf-8 name\n",
    "bin/run.sh": { mode: 0o755, text: "#!/bin/sh\necho run\n" },
    "group-writable.txt": { mode: 0o666, text: "g\n" },
    "read-only.txt": { mode: 0o444, text: "r\n" },
    link: { link: "a.txt" },
    "far-link": { link: longTarget },
  };

  it("writes every file, symlink, long and non-ASCII name as GNU tar reads them back", async () => {
    const root = tree(files);
    utimesSync(join(root, "a.txt"), new Date("2026-01-02T03:04:05Z"), new Date("2026-01-02T03:04:05Z"));
    const { out, selection, sha256, bytes } = await pack(root);
    expect(selection.files.length).toBe(Object.keys(files).length);
    const archive = readFileSync(out);
    expect(bytes).toBe(archive.length);
    expect(sha256).toBe(createHash("sha256").update(archive).digest("hex"));

    const listed = execFileSync("tar", ["-tzf", out], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(listed).toEqual(selection.files.map((f) => f.path));

    const back = extract(out);
    for (const [name, value] of Object.entries(files)) {
      const source = join(root, name);
      const copy = join(back, name);
      if (typeof value === "object" && "link" in value) {
        expect(lstatSync(copy).isSymbolicLink()).toBe(true);
        expect(readlinkSync(copy)).toBe(value.link);
        continue;
      }
      expect(readFileSync(copy).equals(readFileSync(source)), name).toBe(true);
      expect(statSync(copy).mode & 0o7777, name).toBe(portableMode(statSync(source).mode));
    }
    expect(statSync(join(back, "bin/run.sh")).mode & 0o777).toBe(0o755);
    expect(statSync(join(back, "group-writable.txt")).mode & 0o777).toBe(0o644);
    expect(statSync(join(back, "read-only.txt")).mode & 0o777).toBe(0o644);
    expect(statSync(join(back, "a.txt")).mtime.toISOString()).toBe("2026-01-02T03:04:05.000Z");
  });

  it("is read by node-tar without a warning: same paths, sizes, types, portable owners", async () => {
    const root = tree(files);
    const { out, selection } = await pack(root);
    const entries: { path: string; size: number; type: string; uid?: number; linkpath?: string }[] = [];
    const warnings: string[] = [];
    await nodeTar.list({
      file: out,
      strict: true,
      onwarn: (_code, message) => warnings.push(String(message)),
      onReadEntry: (entry) => {
        entries.push({
          path: entry.path,
          size: entry.size,
          type: entry.type,
          uid: entry.uid,
          linkpath: entry.linkpath || undefined,
        });
      },
    });
    expect(warnings).toEqual([]);
    expect(entries.map((e) => e.path)).toEqual(selection.files.map((f) => f.path));
    for (const entry of entries) {
      const file = selection.files.find((f) => f.path === entry.path);
      expect(entry.size).toBe(file?.size);
      expect(entry.type).toBe(entry.path.endsWith("link") ? "SymbolicLink" : "File");
      expect(entry.uid).toBe(0);
    }
    expect(entries.find((e) => e.path === "far-link")?.linkpath).toBe(longTarget);
  });

  it("pax records of every length around a digit boundary", async () => {
    // " path=<name>\n" of 95 to 105 bytes: the record's length crosses from 2 to 3 digits.
    const names = Array.from(
      { length: 12 },
      (_, i) => `${"é".repeat(42 + Math.floor(i / 2))}${"x".repeat(i % 2)}`,
    );
    const root = tree(Object.fromEntries(names.map((n) => [n, n])));
    const { out } = await pack(root);
    const back = extract(out);
    for (const name of names) expect(readFileSync(join(back, name), "utf8")).toBe(name);
  });

  it("fails, without hanging, when a file is gone or no longer a file, or the output cannot be written", async () => {
    const root = tree({ "a.txt": "x".repeat(100_000), "b.txt": "b" });
    const selection = await selectAppFiles(root);
    const out = join(mkdtempSync(join(tmpdir(), "nexus-tar-out-")), "release.tar.gz");
    await expect(
      writeTarball(root, [...selection.files, { path: "gone.txt", size: 1 }], out),
    ).rejects.toThrow(/ENOENT/);
    mkdirSync(join(root, "now-a-dir"));
    await expect(writeTarball(root, [{ path: "now-a-dir", size: 1 }], out)).rejects.toThrow(
      /now-a-dir is no longer a file or a symlink/,
    );
    await expect(
      writeTarball(root, selection.files, join(root, "no-such-dir", "out.tar.gz")),
    ).rejects.toThrow(/ENOENT/);
    const written = await writeTarball(root, selection.files, out);
    expect(written.bytes).toBe(statSync(out).size);
  });

  it("a file of 8 GiB or more gets its size in a pax record", () => {
    const size = 9_000_000_000;
    const bytes = encodeHeader({ path: "huge.bin", mode: 0o644, size, mtime: 0, type: "0" });
    expect(bytes.length).toBe(3 * 512);
    const pax = new nodeTar.Header(bytes, 0);
    expect(pax.type).toBe("ExtendedHeader");
    const record = bytes.subarray(512, 512 + (pax.size ?? 0)).toString("utf8");
    expect(record).toBe(`19 size=${size}\n`);
    const ustar = new nodeTar.Header(bytes, 1024);
    expect(ustar.path).toBe("huge.bin");
    expect(ustar.cksumValid).toBe(true);
  });
});
