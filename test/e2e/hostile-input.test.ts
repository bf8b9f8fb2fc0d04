import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import * as remote from "../../src/remote/commands.js";
import { layout } from "../../src/remote/layout.js";
import { shq } from "../../src/remote/quote.js";

/** Runs a built remote command with a real POSIX shell, as sshd would on a server. */
function sh(command: string) {
  return spawnSync("sh", ["-c", command], { encoding: "utf8" });
}

function sha256(file: string): string {
  return execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0] as string;
}

/** Builds a tar.gz with exactly the given entries (python's tarfile writes what node-tar would refuse to). */
function craftArchive(
  dir: string,
  entries: { name: string; type?: "sym" | "file"; target?: string }[],
): string {
  const file = path.join(dir, "evil.tar.gz");
  const script = `
import io, json, sys, tarfile
entries = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], "w:gz") as t:
    for e in entries:
        ti = tarfile.TarInfo(e["name"])
        if e.get("type") == "sym":
            ti.type = tarfile.SYMTYPE
            ti.linkname = e["target"]
            t.addfile(ti)
        else:
            ti.size = 1
            t.addfile(ti, io.BytesIO(b"x"))
`;
  execFileSync("python3", ["-c", script, file, JSON.stringify(entries)]);
  return file;
}

describe("hostile values reach remote commands quoted", () => {
  const values = [
    "plain",
    "with space",
    "it's",
    '"double"',
    "`id`",
    "a;b&&c||d|e",
    "line\nbreak",
    "~/home",
    "*",
    "$HOME",
    "",
    "back\\slash",
  ];

  it("each value stays one literal word for sh", () => {
    for (const value of values) {
      const out = execFileSync("sh", ["-c", `for w in ${shq(value)}; do printf '%s\\0' "$w"; done`], {
        encoding: "utf8",
      });
      expect(out.split("\0").slice(0, -1)).toEqual([value]);
    }
  });

  it("no builder runs an injected command: the canary file never appears", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-canary-"));
    const canary = path.join(dir, "pwned");
    const evil = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `'; touch ${canary}; '`,
      `\ntouch ${canary}\n`,
    ];
    for (const bad of evil) {
      const l = layout(path.join(dir, `deploy ${bad}`));
      const commands = [
        remote.prepare(l),
        remote.inspect(l),
        remote.lockAcquire(l, JSON.stringify({ user: bad })),
        remote.lockRelease(l, bad),
        remote.appendHistory(l, { note: bad }),
        remote.markFailed(l, "r1"),
        remote.writePrivateFile(l.ecosystem("r1")),
        remote.activate(l, "r1"),
        remote.removeRelease(l, "r1"),
      ];
      for (const command of commands) sh(command);
    }
    expect(existsSync(canary)).toBe(false);
    // And the hostile directory names were created literally.
    expect(readdirSync(dir).some((name) => name.includes("$(touch"))).toBe(true);
  });
});

describe("an artifact that tries to escape its release is refused", () => {
  const cases: [string, { name: string; type?: "sym" | "file"; target?: string }[]][] = [
    ["a ../ entry", [{ name: "./ok.txt" }, { name: "../escaped.txt" }]],
    ["an absolute path", [{ name: "/ESCAPE_DIR/abs.txt" }]],
    ["a symlink out", [{ name: "./ok.txt" }, { name: "link", type: "sym", target: "ESCAPE_DIR" }]],
    [
      "a write through a symlink",
      [{ name: "link", type: "sym", target: "ESCAPE_DIR" }, { name: "link/through.txt" }],
    ],
  ];
  for (const [what, entries] of cases) {
    it(what, () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-escape-"));
      const outside = path.join(dir, "outside");
      mkdirSync(outside);
      const base = path.join(dir, "srv");
      const l = layout(base);
      sh(remote.prepare(l));
      const archive = craftArchive(
        dir,
        entries.map((e) => ({
          ...e,
          name: e.name.replace("ESCAPE_DIR", outside),
          target: e.target?.replace("ESCAPE_DIR", outside),
        })),
      );
      const result = sh(remote.extract(l, archive, "r1", sha256(archive)));
      expect(result.status, result.stderr).not.toBe(0);
      expect(existsSync(l.release("r1"))).toBe(false);
      expect(readdirSync(outside)).toEqual([]);
      expect(existsSync(path.join(dir, "escaped.txt"))).toBe(false);
    });
  }

  it("a checksum mismatch is detected before anything is extracted", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-sum-"));
    const l = layout(path.join(dir, "srv"));
    sh(remote.prepare(l));
    const archive = craftArchive(dir, [{ name: "./ok.txt" }]);
    const result = sh(remote.extract(l, archive, "r1", "0".repeat(64)));
    expect(result.status).toBe(65);
    expect(result.stderr).toContain("checksum mismatch");
    expect(existsSync(l.release("r1"))).toBe(false);
    expect(existsSync(`${l.release("r1")}.partial`)).toBe(false);
  });

  it("a well-formed artifact extracts, relative symlinks included", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-ok-"));
    const l = layout(path.join(dir, "srv"));
    sh(remote.prepare(l));
    const archive = craftArchive(dir, [
      { name: "./lib/a.js" },
      { name: "./current.js", type: "sym", target: "lib/a.js" },
    ]);
    const result = sh(remote.extract(l, archive, "r1", sha256(archive)));
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(path.join(l.release("r1"), "current.js"), "utf8")).toBe("x");
  });
});
