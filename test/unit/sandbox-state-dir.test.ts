import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { installSandboxPm2, pm2Closure } from "../../src/sandbox/pm2.js";
import {
  currentStateDir,
  ensureStateDir,
  linkStateDir,
  planLink,
  stateDirFor,
} from "../../src/sandbox/state-dir.js";

function tmp(): string {
  return realpathSync(mkdtempSync(path.join(os.tmpdir(), "nexus-state dir ")));
}

describe("the sandbox's state dir", () => {
  it("is one per named dir and user, under the state root, with no whitespace whatever the checkout's path", () => {
    const a = stateDirFor("/root/my checkout/.sandbox", "/var/tmp");
    expect(a).toBe(stateDirFor("/root/my checkout/.sandbox/", "/var/tmp"));
    expect(a).not.toBe(stateDirFor("/root/my checkout/.sandbox-test-4", "/var/tmp"));
    expect(a).toMatch(new RegExp(`^/var/tmp/nexus-sandbox-${process.getuid?.()}-[0-9a-f]{12}$`));
  });

  it("is found when its link is gone (a fresh clone at the same path), so down and purge reach the old state", async () => {
    const root = tmp();
    const named = path.join(root, "checkout", ".sandbox-test");
    const stateRoot = path.join(root, "var-tmp");
    mkdirSync(stateRoot);
    // Nothing behind the name yet: the name itself (nothing to stop, nothing to remove).
    expect(await currentStateDir(named, stateRoot)).toBe(named);
    const state = stateDirFor(named, stateRoot);
    await ensureStateDir(state);
    await linkStateDir(named, state, { kind: "create" });
    expect(await currentStateDir(named, stateRoot)).toBe(state);
    // The checkout removed and cloned again: no link, the state dir still there.
    rmSync(path.join(root, "checkout"), { recursive: true });
    expect(await currentStateDir(named, stateRoot)).toBe(state);
  });

  it("links the named dir to it: created, kept, replaced when it points elsewhere or is an old sandbox dir", async () => {
    const root = tmp();
    const named = path.join(root, "checkout", ".sandbox");
    const state = path.join(root, "state");
    await ensureStateDir(state);
    expect(await planLink(named, state)).toEqual({ kind: "create" });
    await linkStateDir(named, state, { kind: "create" });
    expect(readlinkSync(named)).toBe(state);
    expect(await planLink(named, state)).toEqual({ kind: "ok" });
    expect(await planLink(named, path.join(root, "other"))).toEqual({ kind: "replace", what: "link" });

    const old = path.join(root, "old");
    mkdirSync(path.join(old, "hosts"), { recursive: true });
    expect(await planLink(old, state)).toEqual({ kind: "replace", what: "sandbox dir" });
    await linkStateDir(old, state, { kind: "replace", what: "sandbox dir" });
    expect(readlinkSync(old)).toBe(state);
  });

  it("refuses to take over a directory that is not a sandbox", async () => {
    const root = tmp();
    writeFileSync(path.join(root, "notes.txt"), "mine");
    await expect(planLink(root, "/x")).rejects.toThrow(/is not a sandbox/);
  });

  it("refuses a state dir others may write to, or a link planted in its place", async () => {
    const root = tmp();
    const open = path.join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(ensureStateDir(open)).rejects.toThrow(/closed to writes by others/);
    const planted = path.join(root, "planted");
    symlinkSync(open, planted);
    await expect(ensureStateDir(planted)).rejects.toThrow(/closed to writes by others/);
    const fresh = path.join(root, "fresh");
    await ensureStateDir(fresh);
    expect(statSync(fresh).mode & 0o777).toBe(0o755);
  });
});

/** A node_modules tree the way npm lays one out: hoisted packages, one nested under its dependent. */
function fakeProject(): string {
  const root = tmp();
  const pkg = (dir: string, name: string, version: string, deps: Record<string, string> = {}) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, version, dependencies: deps }));
  };
  pkg(path.join(root, "node_modules", "pm2"), "pm2", "6.0.0", { a: "1", b: "1" });
  mkdirSync(path.join(root, "node_modules", "pm2", "bin"));
  writeFileSync(path.join(root, "node_modules", "pm2", "bin", "pm2"), "#!/bin/sh\necho pm2\n", {
    mode: 0o700,
  });
  pkg(path.join(root, "node_modules", "a"), "a", "1.0.0", { b: "2" });
  pkg(path.join(root, "node_modules", "a", "node_modules", "b"), "b", "2.0.0");
  pkg(path.join(root, "node_modules", "b"), "b", "1.0.0");
  pkg(path.join(root, "node_modules", "unrelated"), "unrelated", "1.0.0");
  return root;
}

describe("the sandbox hosts' own PM2", () => {
  it("is pm2 and what it loads, nested copies resolved as Node would", async () => {
    const root = fakeProject();
    const closure = await pm2Closure(root);
    expect(closure.map((p) => `${path.relative(root, p.dir)}@${p.version}`)).toEqual([
      "node_modules/a@1.0.0",
      "node_modules/a/node_modules/b@2.0.0",
      "node_modules/b@1.0.0",
      "node_modules/pm2@6.0.0",
    ]);
  });

  it("is copied into the state dir, readable by others, with bin/pm2 linked; the same versions are not copied twice", async () => {
    const root = fakeProject();
    const state = tmp();
    const bin = await installSandboxPm2(root, state);
    expect(bin).toBe(path.join(state, "bin", "pm2"));
    expect(realpathSync(bin)).toBe(path.join(state, "pm2", "node_modules", "pm2", "bin", "pm2"));
    expect(statSync(bin).mode & 0o055).toBe(0o055);
    expect(
      existsSync(path.join(state, "pm2", "node_modules", "a", "node_modules", "b", "package.json")),
    ).toBe(true);
    expect(existsSync(path.join(state, "pm2", "node_modules", "unrelated"))).toBe(false);
    const stamp = readFileSync(path.join(state, "pm2", ".nexus-stamp"), "utf8");
    writeFileSync(path.join(state, "pm2", "node_modules", "b", "marker"), "kept");
    await installSandboxPm2(root, state);
    expect(existsSync(path.join(state, "pm2", "node_modules", "b", "marker"))).toBe(true);
    writeFileSync(
      path.join(root, "node_modules", "b", "package.json"),
      JSON.stringify({ name: "b", version: "1.0.1" }),
    );
    await installSandboxPm2(root, state);
    expect(existsSync(path.join(state, "pm2", "node_modules", "b", "marker"))).toBe(false);
    expect(readFileSync(path.join(state, "pm2", ".nexus-stamp"), "utf8")).not.toBe(stamp);
  });
});
