import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { assertEntriesShip, entryFiles, whyLeftOut } from "../../src/artifact/entries.js";
import { ConfigError } from "../../src/config/errors.js";

function app(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "nexus-entries-"));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

describe("entry scripts in the artifact", () => {
  it("names the entry files: app.start and a script among pm2.options.args", () => {
    const config = (args?: string | string[]) => ({
      app: { start: "node_modules/.bin/tsx" },
      pm2: { options: args === undefined ? {} : { args } },
    });
    expect(entryFiles(config() as never)).toEqual([{ field: "app.start", file: "node_modules/.bin/tsx" }]);
    expect(entryFiles(config(["--watch", "src/main.ts"]) as never)).toEqual([
      { field: "app.start", file: "node_modules/.bin/tsx" },
      { field: "pm2.options.args[1]", file: "src/main.ts" },
    ]);
    expect(entryFiles(config("start --port 3000") as never)).toHaveLength(1);
  });

  it("names the rule that leaves a file or its directory out, and nothing for a file that ships", async () => {
    const root = app({
      ".gitignore": "dist/\n",
      "dist/index.js": "",
      "lib/.nexusignore": "*.gen.js\n",
      "lib/a.gen.js": "",
      "server.js": "",
    });
    expect(await whyLeftOut(root, "server.js", {})).toBeUndefined();
    expect(await whyLeftOut(root, "dist/index.js", {})).toBe("`dist/` in .gitignore leaves out dist/");
    expect(await whyLeftOut(root, "lib/a.gen.js", {})).toBe("`*.gen.js` in lib/.nexusignore");
    expect(await whyLeftOut(root, "server.js", { exclude: ["server.js"] })).toBe(
      "`server.js` in app.exclude",
    );
    expect(await whyLeftOut(root, ".env.js", {})).toBe("`.env*`, left out by default");
    expect(await whyLeftOut(root, "node_modules/x/index.js", {})).toBe("node_modules is never shipped");
    expect(await whyLeftOut(root, "dist/index.js", { include: ["dist/"] })).toBeUndefined();
  });

  it("a deploy refuses an entry left out (naming the rule and app.include) or missing once built", async () => {
    const root = app({ ".gitignore": "dist/\n", "dist/index.js": "" });
    const config = (start: string, include: string[] = [], build?: string) => ({
      file: "deploy.config.json",
      app: { root, start, exclude: [], include, ...(build ? { build } : {}) },
      pm2: { options: {} },
    });
    const error = await assertEntriesShip(config("dist/index.js") as never, { built: true }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'app.start: dist/index.js is not in the artifact (`dist/` in .gitignore leaves out dist/): list it in app.include (e.g. "include": ["dist/"]), or build it on the servers',
    ]);
    await expect(
      assertEntriesShip(config("dist/index.js", ["dist/"]) as never, { built: true }),
    ).resolves.toBe(undefined);
    await expect(assertEntriesShip(config("main.js") as never, { built: true })).rejects.toThrow(
      /app\.start: main\.js does not exist in app\.root .*: build it first, or set app\.build/,
    );
    // A dry run does not build: what the build makes need not exist yet.
    await expect(
      assertEntriesShip(config("main.js", [], "npm run build") as never, { built: false }),
    ).resolves.toBe(undefined);
  });
});
