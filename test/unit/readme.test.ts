import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

/** The order in which `words` first appear in `text`, as their indexes (-1: missing). */
const positions = (text: string, words: string[]) => words.map((w) => text.indexOf(w));

describe("the README a new user reads", () => {
  it("opens with the user's path (install, init, setup, check, deploy, rollback), then the sandbox to try it", () => {
    const firstScreen = read("README.md").split("\n").slice(0, 40).join("\n");
    const steps = positions(firstScreen, [
      "npm install -D github:nexus-deploy/nexus",
      "npx nexus init",
      "npx nexus setup",
      "npx nexus check",
      "npx nexus deploy",
      "npx nexus rollback",
      "Try it without servers",
      "npm run demo",
    ]);
    expect(
      steps.every((i) => i >= 0),
      String(steps),
    ).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
  });

  it("keeps the contributor's two commands in a Develop section", () => {
    const readme = read("README.md");
    const develop = readme.slice(readme.indexOf("\n## Develop\n"));
    expect(develop.length).toBeGreaterThan(20);
    expect(develop).toContain("npm run demo");
    expect(develop).toContain("npm test");
  });

  it("docs/servers.md gives one numbered path: install, init, setup, check, deploy", () => {
    const servers = read("docs/servers.md");
    const list = servers.slice(0, servers.indexOf("## 1. A deploy user"));
    const steps = positions(list, [
      "1. **Install nexus",
      "3. **`npx nexus init`",
      "4. **`npx nexus setup",
      "5. **`npx nexus check`",
      "6. **`npx nexus deploy",
    ]);
    expect(
      steps.every((i) => i >= 0),
      String(steps),
    ).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(list).toContain("not on npm yet");
  });
});
