import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ArtifactFilter } from "../../src/artifact/exclude.js";
import { appPackOptions, selectAppFiles } from "../../src/artifact/pack.js";
import { makeReleaseId } from "../../src/artifact/release-id.js";
import { formatDuration, parseDuration } from "../../src/config/duration.js";

/** A filter as the walker builds it: ignore files as { dir: text }, root first. */
function filterWith(
  ignoreFiles: Record<string, string> = {},
  options: { exclude?: string[]; include?: string[] } = {},
): ArtifactFilter {
  const filter = new ArtifactFilter(options);
  for (const [dir, text] of Object.entries(ignoreFiles)) filter.addIgnoreFile(dir, text);
  return filter;
}

const ships = (filter: ArtifactFilter, p: string, dir = false) => filter.decide(p, dir).ship;

describe("artifact exclusions", () => {
  it("never ships dependencies, VCS data, logs or dotenv files, at any depth", () => {
    const filter = filterWith();
    for (const p of [
      "node_modules",
      "./node_modules/x/index.js",
      "lib/node_modules/y",
      ".git/HEAD",
      "logs/a.txt",
      "app.log",
      "src/debug.log",
      ".env",
      ".env.production",
      "config/.env.local",
      ".npmrc",
    ]) {
      expect(ships(filter, p), p).toBe(false);
    }
    expect(ships(filter, "node_modules", true)).toBe(false);
    expect(ships(filter, "logs", true)).toBe(false);
    expect(ships(filter, "logs", false)).toBe(false); // a symlink to /var/log/app, say
  });

  it("leaves out the config file in use when it sits in the app (env values in plain text); app.include ships it", () => {
    const app = (root: string, include: string[] = []) => ({ root, exclude: ["*.tmp"], include }) as never;
    const inside = appPackOptions({ app: app("/srv/shop"), file: "/srv/shop/deploy.config.json" });
    expect(inside.exclude).toEqual(["/deploy.config.json", "*.tmp"]);
    const filter = filterWith({}, { exclude: [...(inside.exclude ?? [])] });
    expect(ships(filter, "deploy.config.json")).toBe(false);
    expect(ships(filter, "src/deploy.config.json")).toBe(true);
    const included = appPackOptions({
      app: app("/srv/shop", ["deploy.config.json"]),
      file: "/srv/shop/deploy.config.json",
    });
    expect(
      ships(
        filterWith({}, { exclude: [...(included.exclude ?? [])], include: [...(included.include ?? [])] }),
        "deploy.config.json",
      ),
    ).toBe(true);
    expect(
      appPackOptions({ app: app("/srv/shop"), file: "/srv/shop/ops/deploy [prod].json" }).exclude?.[0],
    ).toBe("/ops/deploy \\[prod\\].json");
    const bracketed = appPackOptions({ app: app("/srv/shop"), file: "/srv/shop/ops/deploy [prod].json" });
    expect(ships(filterWith({}, { exclude: [...(bracketed.exclude ?? [])] }), "ops/deploy [prod].json")).toBe(
      false,
    );
    expect(ships(filterWith({}, { exclude: [...(bracketed.exclude ?? [])] }), "ops/deploy p.json")).toBe(
      true,
    );
    expect(appPackOptions({ app: app("/srv/shop"), file: "/srv/deploy.config.json" }).exclude).toEqual([
      "*.tmp",
    ]);
    expect(
      appPackOptions({ app: app("/srv/shop"), file: path.relative(process.cwd(), "/srv/shop/x.json") })
        .exclude?.[0],
    ).toBe("/x.json");
  });

  it("keeps the app", () => {
    const filter = filterWith({ "": "coverage/\n" });
    for (const p of [
      "server.js",
      "src/catalog.js",
      "package.json",
      "logsmith.js",
      "src/api/logs/index.js",
      "src/routes/logs",
      "blog/post.md",
      "environment.js",
    ])
      expect(ships(filter, p), p).toBe(true);
  });

  it("globs: **/foo is a whole name, a/**/b crosses zero or more directories but never splits a name", () => {
    const filter = filterWith({}, { exclude: ["**/foo", "a/**/b", "docs/**/*.psd", "/local-only", "*.tmp"] });
    expect(ships(filter, "foo")).toBe(false);
    expect(ships(filter, "x/y/foo")).toBe(false);
    expect(ships(filter, "xfoo")).toBe(true);
    expect(ships(filter, "x/xfoo")).toBe(true);
    expect(ships(filter, "a/b")).toBe(false);
    expect(ships(filter, "a/x/y/b")).toBe(false);
    expect(ships(filter, "a/xb")).toBe(true);
    expect(ships(filter, "ab")).toBe(true);
    expect(ships(filter, "docs/art/x/y.psd")).toBe(false);
    expect(ships(filter, "local-only")).toBe(false);
    expect(ships(filter, "src/local-only")).toBe(true);
    expect(ships(filter, "a/b/c.tmp")).toBe(false);
  });

  it("negation re-includes a file whose directory is not itself excluded (coverage/* then !coverage/keep.txt)", () => {
    const filter = filterWith({ "": "coverage/*\n!coverage/keep.txt\n" });
    expect(ships(filter, "coverage", true)).toBe(true);
    expect(ships(filter, "coverage/keep.txt")).toBe(true);
    expect(ships(filter, "coverage/index.html")).toBe(false);
    expect(ships(filter, "coverage/lcov", true)).toBe(false);
  });

  it("a file cannot be re-included when its parent directory is excluded (coverage/ then !coverage/keep.txt)", () => {
    const filter = filterWith({ "": "coverage/\n!coverage/keep.txt\n" });
    expect(ships(filter, "coverage", true)).toBe(false);
    expect(ships(filter, "coverage/keep.txt")).toBe(false);
  });

  it("directory-only patterns match directories, not files of that name", () => {
    const filter = filterWith({ "": "build/\n" });
    expect(ships(filter, "build", true)).toBe(false);
    expect(ships(filter, "build")).toBe(true);
  });

  it("a nested .gitignore applies below its directory, relative to it, and overrides the root's", () => {
    const filter = filterWith({ "": "*.txt\n", web: "/dist\n!notes.txt\n" });
    expect(ships(filter, "web/dist", true)).toBe(false);
    expect(ships(filter, "dist", true)).toBe(true);
    expect(ships(filter, "web/src/dist", true)).toBe(true);
    expect(ships(filter, "web/notes.txt")).toBe(true);
    expect(ships(filter, "readme.txt")).toBe(false);
    expect(ships(filter, "api/notes.txt")).toBe(false);
  });

  it("app.exclude comes last, and may negate an ignore file's rule", () => {
    const filter = filterWith({ "": "tmp/*\n" }, { exclude: ["fixtures/", "!tmp/seed.json"] });
    expect(ships(filter, "fixtures", true)).toBe(false);
    expect(ships(filter, "tmp/seed.json")).toBe(true);
    expect(ships(filter, "tmp/other.json")).toBe(false);
  });

  it("app.include ships what is excluded by default or by an ignore file, but never node_modules or .git", () => {
    const filter = filterWith(
      { "": "secrets/\n" },
      { include: [".env.production", ".npmrc", "secrets/", "node_modules", ".git"] },
    );
    expect(filter.decide(".env.production", false)).toEqual({ ship: true, explicit: true });
    expect(ships(filter, ".env")).toBe(false);
    expect(ships(filter, ".npmrc")).toBe(true);
    expect(ships(filter, "secrets", true)).toBe(true);
    expect(ships(filter, "node_modules", true)).toBe(false);
    expect(ships(filter, ".git", true)).toBe(false);
    expect(filter.decide("server.js", false)).toEqual({ ship: true });
  });

  it("names the files that look like secrets", () => {
    const filter = filterWith();
    for (const p of [".env", "config/.env.local", "tls/server.pem", "id_ed25519", "keys/id_rsa", ".npmrc"])
      expect(filter.looksSecret(p), p).toBe(true);
    for (const p of ["server.js", "identity.js", "environment.ts", "pem/readme.md"])
      expect(filter.looksSecret(p), p).toBe(false);
  });
});

describe("release ids and durations", () => {
  it("UTC time, short commit, dirty mark", () => {
    const at = new Date(Date.UTC(2026, 10, 26, 20, 45, 1, 123));
    expect(makeReleaseId(at)).toBe("20261126T204501Z");
    expect(makeReleaseId(at, { commit: "1a2b3c4", dirty: false })).toBe("20261126T204501Z-1a2b3c4");
    expect(makeReleaseId(at, { commit: "1a2b3c4", dirty: true })).toBe("20261126T204501Z-1a2b3c4-dirty");
  });
  it("parses durations with units", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration("soon")).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(formatDuration(30_000)).toBe("30s");
  });
});

describe("nexus configs in the app", () => {
  it("are left out whatever their name (by content) or by the environments convention (by name); app.include ships one", async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "nexus-configs-"));
    const write = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    };
    const config = {
      app: { name: "shop" },
      servers: [{ name: "a", host: "10.0.0.1" }],
      balancer: { host: "a" },
    };
    write("package.json", "{}");
    write("deploy/staging.json", JSON.stringify({ ...config, pm2: { env: { API_TOKEN: "supersecret" } } }));
    write("deploy.production.json", '{"servers":[]}');
    write("config/deploy.config.json", "not even JSON");
    write("data/servers.json", '{"servers":["a"],"balancer":"round-robin"}');
    write("fixtures/broken.json", '{"servers":[], "balancer": {');
    const selection = await selectAppFiles(root);
    expect(selection.files.map((f) => f.path)).toEqual([
      "data/servers.json",
      "fixtures/broken.json",
      "package.json",
    ]);
    expect(selection.leftOut.map((f) => f.path)).toEqual([
      "config/deploy.config.json",
      "deploy/staging.json",
      "deploy.production.json",
    ]);
    const included = await selectAppFiles(root, { include: ["deploy/staging.json"] });
    expect(included.files.map((f) => f.path)).toContain("deploy/staging.json");
    expect(included.warnings).toContain(
      "deploy/staging.json is a nexus config and ships because app.include names it",
    );
  });
});
