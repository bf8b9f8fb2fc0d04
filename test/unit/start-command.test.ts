import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageFacts } from "../../src/commands/init.js";
import { Pm2 } from "../../src/process/pm2/pm2.js";
import { layout } from "../../src/remote/layout.js";
import { expandWord, parseCommandLine } from "../../src/start/command-line.js";
import {
  describeStart,
  expandStart,
  parseStart,
  type StartCommand,
  StartError,
  startProblems,
} from "../../src/start/start.js";

const pkg = (scripts: Record<string, string>) => JSON.stringify({ name: "app", scripts });
const script = (text: string, extra: Record<string, string> = {}) =>
  parseStart("script:start", pkg({ start: text, ...extra }));
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StartError);
    return (error as Error).message;
  }
  throw new Error("not refused");
};
/** The command as PM2 will get it, for a given environment. */
const argv = (start: StartCommand, env: Record<string, string> = { PORT: "3000" }) => {
  const expanded = expandStart(start, env);
  return {
    run: start.run,
    nodeArgs: expanded.nodeArgs,
    args: expanded.args,
    env: expanded.env,
  };
};

describe("app.start: a file, a package script, a dependency's binary", () => {
  it("a file stays what it always was: no parsing, no arguments (spaces and all)", () => {
    for (const file of ["server.js", "dist/main.js", "my app.js", "bin/server"]) {
      expect(parseStart(file, undefined)).toEqual({
        spec: file,
        env: [],
        run: { file, node: false },
        nodeArgs: [],
        args: [],
        warnings: [],
      });
    }
  });

  it("a script `node [options] FILE [args]` runs FILE under PM2 with its node options and arguments", () => {
    expect(argv(script("node dist/main.js"))).toEqual({
      run: { file: "dist/main.js", node: true },
      nodeArgs: [],
      args: [],
      env: {},
    });
    expect(
      argv(
        script("NODE_ENV=production node --enable-source-maps -r dotenv/config ./dist/main.js --port $PORT"),
      ),
    ).toEqual({
      run: { file: "dist/main.js", node: true },
      nodeArgs: ["--enable-source-maps", "-r", "dotenv/config"],
      args: ["--port", "3000"],
      env: { NODE_ENV: "production" },
    });
    expect(argv(script("node --max-old-space-size=512 -- server.js -v"))).toMatchObject({
      run: { file: "server.js", node: true },
      nodeArgs: ["--max-old-space-size=512"],
      args: ["-v"],
    });
    // npm:NAME is the same thing.
    expect(parseStart("npm:serve", pkg({ serve: "node a.js" })).run).toEqual({ file: "a.js", node: true });
  });

  it("a script that runs a binary (`next start`), through .bin, or `exec`/`env`/`cross-env` runs the binary itself", () => {
    expect(argv(script("next start -p $PORT"))).toEqual({
      run: { bin: "next" },
      nodeArgs: [],
      args: ["start", "-p", "3000"],
      env: {},
    });
    expect(script("./node_modules/.bin/nest start").run).toEqual({ bin: "nest" });
    expect(argv(script("exec node server.js"))).toMatchObject({ run: { file: "server.js", node: true } });
    expect(argv(script("cross-env NODE_ENV=production TZ=UTC node server.js"))).toMatchObject({
      run: { file: "server.js", node: true },
      env: { NODE_ENV: "production", TZ: "UTC" },
    });
    expect(argv(script("env A=1 next start"))).toMatchObject({ run: { bin: "next" }, env: { A: "1" } });
    expect(script("./bin/www.js").run).toEqual({ file: "bin/www.js", node: true });
  });

  it("bin:NAME ARGS names a dependency's binary directly", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
    expect(argv(parseStart("bin:next start -p ${PORT:-3000}", undefined))).toEqual({
      run: { bin: "next" },
      nodeArgs: [],
      args: ["start", "-p", "3000"],
      env: {},
    });
    expect(refusal(() => parseStart("bin:node server.js", undefined))).toMatch(
      /"bin:node server.js" runs node, not a dependency's binary: set app.start to the file \("server.js"\)/,
    );
    expect(refusal(() => parseStart("bin:", undefined))).toMatch(/is empty/);
  });

  it("refuses, naming app.start, what needs a shell, and says what to write instead", () => {
    const cases: [string, RegExp][] = [
      ["next build && next start", /uses `&&` or a background job \(`&`\), which needs a shell/],
      ["node server.js | tee log", /a pipe/],
      ["node a.js; node b.js", /a second command/],
      ["node server.js > out.log", /a redirection/],
      ["node $(cat main)", /a command substitution \(`\$\(`\)/],
      ["node `cat main`", /a command substitution/],
      ["node dist/*.js", /a glob pattern/],
      ["node ~/server.js", /a home directory/],
      ["(node a.js)", /a subshell/],
      ["node a.js $1", /`\$1`, a shell parameter/],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
      ["node ${MAIN%.js}", /nexus expands only \$NAME, \$\{NAME\} and \$\{NAME:-default\}/],
      ["node 'a.js", /leaves a single quote open/],
    ];
    for (const [text, reason] of cases) {
      const message = refusal(() => script(text));
      expect(message, text).toMatch(/^app\.start: the script "start" \(/);
      expect(message, text).toMatch(reason);
      expect(message, text).toContain('such as "node dist/main.js" or "next start -p $PORT"');
    }
    expect(refusal(() => script("npm run serve"))).toMatch(
      /runs npm, which would stand between PM2 and the app \(PM2's signals stop at it\)/,
    );
    expect(refusal(() => script("npx next start"))).toMatch(/for "npx next start": "next start"/);
    expect(refusal(() => script("sh -c 'node a.js'"))).toMatch(/runs a shell \(sh\)/);
    expect(refusal(() => script("node -e 'require(1)'"))).toMatch(/node -e, which evaluates code/);
    expect(refusal(() => script("node --watch server.js"))).toMatch(
      /node --watch, which restarts the app itself/,
    );
    expect(refusal(() => script("node"))).toMatch(/without a file/);
    expect(refusal(() => script("node ../other/server.js"))).toMatch(/outside the release/);
    expect(refusal(() => script("$RUNNER server.js"))).toMatch(/takes its command's name from a variable/);
    expect(refusal(() => script("./start.sh"))).toMatch(
      /runs the executable \.\/start\.sh: nexus starts Node programs/,
    );
  });

  it("a missing script, package.json or name is a clear error", () => {
    expect(refusal(() => parseStart("script:strat", pkg({ start: "node a.js", build: "tsc" })))).toBe(
      'app.start: package.json has no script "strat" (its scripts: start, build)',
    );
    expect(refusal(() => parseStart("script:start", undefined))).toMatch(/app.root has no package.json/);
    expect(refusal(() => parseStart("script:", pkg({})))).toMatch(/names no script/);
  });

  it("warns that prestart and poststart are not run", () => {
    expect(script("node a.js", { prestart: "tsc" }).warnings).toEqual([
      'app.start: the script "prestart" is not run (npm would run it around "start"; nexus runs "start"\'s command alone): move it to app.build or hooks.afterStart',
    ]);
  });

  it("says what will be started", () => {
    expect(describeStart(parseStart("server.js", undefined))).toBe("server.js");
    expect(describeStart(script("node --enable-source-maps dist/main.js --x 'a b'"))).toBe(
      "the script \"start\": node --enable-source-maps dist/main.js --x 'a b': PM2 runs dist/main.js with node, no npm in between",
    );
    expect(describeStart(parseStart("bin:next start -p $PORT", undefined))).toBe(
      'next start -p $PORT: PM2 runs the JS file of the dependency\'s binary next (from its package.json "bin", found on each server after the install) with node, no npm in between',
    );
  });
});

describe("the shell's words, without a shell", () => {
  it("quotes, backslashes and variables read as sh reads them", () => {
    const words = (text: string, env: Record<string, string> = {}) =>
      parseCommandLine(text).words.flatMap((w) => expandWord(w, env));
    expect(words(`a 'b c' "d $X e" f\\ g h"i"'j'`, { X: "x" })).toEqual(["a", "b c", "d x e", "f g", "hij"]);
    expect(words(`"\\$X" '$X' \\$X`, { X: "x" })).toEqual(["$X", "$X", "$X"]);
    // Unquoted: split at blanks; an empty unquoted variable is no word; quoted, one word.
    expect(words(`a $ARGS "$ARGS" $EMPTY "$EMPTY" x$ARGS`, { ARGS: "1  2", EMPTY: "" })).toEqual([
      "a",
      "1",
      "2",
      "1  2",
      "",
      "x1",
      "2",
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
    expect(words("${A:-d} ${B:-d} ${B-d} ${C-d}", { A: "a", B: "" })).toEqual(["a", "d", "d"]);
    expect(words("a \\\n b")).toEqual(["a", "b"]);
    expect(words("cost $ 5")).toEqual(["cost", "$", "5"]);
  });

  it("only an unquoted NAME= before the command is an assignment", () => {
    const line = parseCommandLine(`A=1 B="x y" C= node a.js D=2`);
    expect(line.assignments.map((a) => [a.name, expandWord(a.value, {})])).toEqual([
      ["A", ["1"]],
      ["B", ["x y"]],
      ["C", []],
    ]);
    expect(line.words.map((w) => expandWord(w, {}))).toEqual([["node"], ["a.js"], ["D=2"]]);
    expect(parseCommandLine(`"A=1" node`).assignments).toEqual([]);
  });
});

describe("the command's variables against the app's environment", () => {
  const server = (name: string, env: Record<string, string>, secretKeys: string[] = []) => ({
    name,
    env,
    secretKeys,
  });

  it("reads only what nexus puts in the app's environment on every server, or a default", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
    const start = script("node a.js --port $PORT --region $REGION --tz ${TZ:-UTC}");
    expect(startProblems(start, [server("a", { REGION: "eu" }), server("b", { REGION: "us" })])).toEqual([]);
    expect(startProblems(start, [server("a", { REGION: "eu" }), server("b", {})])).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
      "app.start: the script \"start\" reads $REGION, which is not in the app's environment on b (nexus expands the command's variables from pm2.env, servers[].env and PORT, NEXUS_RELEASE, NEXUS_SERVER, not from a shell on the server): set it in pm2.env, or write ${REGION:-default}",
    ]);
  });

  it("keeps secrets out of arguments (ps shows them) and PORT to nexus", () => {
    const secret = [server("a", { TOKEN: "t" }, ["TOKEN"])];
    expect(startProblems(parseStart("bin:worker --token $TOKEN", undefined), secret)).toEqual([
      'app.start: "bin:worker --token $TOKEN" puts $TOKEN, a secret (fromEnv), in the command\'s arguments, which every user of the server sees (ps): let the app read it from its environment',
    ]);
    expect(startProblems(script("API_TOKEN=$TOKEN node a.js"), secret)).toEqual([]);
    expect(startProblems(script("PORT=8080 node a.js"), secret)).toEqual([
      'app.start: the script "start" sets PORT, which nexus sets (app.port, or the surge strategy\'s second port): leave it out',
    ]);
  });
});

describe("the PM2 ecosystem file of a start command", () => {
  const l = layout("/srv/api");
  const ecosystem = (start: StartCommand, options: Record<string, unknown> = {}, port?: number) => {
    const pm2 = new Pm2({ name: "api", killTimeout: 1000, start, options });
    const env = { PORT: String(port ?? 3000), NEXUS_RELEASE: "r1" };
    const file = pm2.processFile(l, { release: "r1", cwd: l.release("r1"), env, port });
    return { file, app: JSON.parse(file.content).apps[0] };
  };

  it("a file: the ecosystem file as before, pm2.options untouched, written as a plain private file", () => {
    const { file, app } = ecosystem(parseStart("server.js", undefined), { args: "--a b" });
    expect(app).toMatchObject({ script: "server.js", args: "--a b" });
    expect(app.interpreter).toBeUndefined();
    expect(file.write.command).not.toContain("@start");
  });

  it("a node command: node as interpreter, its options and arguments before pm2.options'", () => {
    const start = script("NODE_ENV=production node --enable-source-maps dist/main.js --port $PORT");
    const { app, file } = ecosystem(start, { args: "--x 'y z'", node_args: ["--trace-warnings"] }, 3001);
    expect(app).toMatchObject({
      script: "dist/main.js",
      interpreter: "node",
      args: ["--port", "3001", "--x", "y z"],
      node_args: ["--enable-source-maps", "--trace-warnings"],
      env: { PORT: "3001", NEXUS_RELEASE: "r1", NODE_ENV: "production" },
    });
    // dist/main.js is what node runs: nothing to find on the server.
    expect(file.write.command).not.toMatch(/write-ecosystem|@start/);
  });

  it("a binary, or a node file without its extension, is found on the server when the file is written", () => {
    const bin = ecosystem(parseStart("bin:next start", undefined), { interpreter: "/opt/node/bin/node" });
    expect(bin.app).toMatchObject({ script: "node_modules/.bin/next", interpreter: "/opt/node/bin/node" });
    expect(bin.file.write.stdin).toBe(bin.file.content);
    expect(bin.file.write.command).toContain("/srv/api/.nexus/pm2/r1.json bin next");
    const main = ecosystem(script("node dist/main"));
    expect(main.file.write.command).toContain("/srv/api/.nexus/pm2/r1.json file dist/main");
    expect(main.file.write.parse({ code: 0, stdout: "@start dist/main.js\n", stderr: "" }, "s")).toBe(
      "dist/main.js",
    );
  });
});

describe("nexus init's guess", () => {
  it("proposes script:start for a start script nexus can run that is not `node FILE`", () => {
    const facts = (scripts: Record<string, string>) => {
      const root = mkdtempSync(path.join(os.tmpdir(), "nexus-init-start-"));
      writeFileSync(path.join(root, "package.json"), JSON.stringify({ scripts }));
      return packageFacts(root);
    };
    expect(facts({ start: "node dist/main.js" }).start).toBe("dist/main.js");
    expect(facts({ start: "next start -p $PORT" })).toMatchObject({
      start: "script:start",
      from: "scripts.start",
    });
    expect(facts({ start: "next build && next start" }).start).toBeUndefined();
  });
});
