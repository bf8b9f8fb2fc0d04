import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { currentRelease, fixture, uniqueRelease, writeConfig } from "./helpers.js";
import { PROJECT_ROOT, sandboxInfo } from "./sandbox-env.js";

const SERVERS = ["nexus-alpha", "nexus-beta", "nexus-gamma"];
const ACTION = readFileSync(path.join(PROJECT_ROOT, "action.yml"), "utf8");

/** The `run:` line and the `env:` block of one step of action.yml (a composite action). */
function actionStep(name: string): { run: string; env: Record<string, string> } {
  const start = ACTION.indexOf(`- name: ${name}\n`);
  expect(start, `action.yml has no step "${name}"`).toBeGreaterThan(0);
  const rest = ACTION.slice(start + 1);
  const block = rest.slice(0, rest.search(/\n {4}- name: |$/));
  const run = /\n {6}run: (.+)/.exec(block)?.[1] ?? "";
  const env: Record<string, string> = {};
  for (const m of block.matchAll(/\n {8}([A-Z_]+): (.+)/g)) env[m[1] as string] = m[2] as string;
  return { run, env };
}

/**
 * The action as a workflow gets it: a checkout of the repository, with no node_modules and no
 * dist/ anywhere above or in it (so nothing can be installed, compiled or borrowed from the project).
 */
function cleanActionCopy(): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "nexus-action-")), "nexus");
  const skip = new Set(["node_modules", "dist", ".git", "coverage", "tmp"]);
  cpSync(PROJECT_ROOT, dir, {
    recursive: true,
    filter: (source) => {
      const name = path.basename(source);
      return !skip.has(name) && !name.startsWith(".sandbox");
    },
  });
  return dir;
}

let actionPath = "";

interface ActionRun {
  exitCode: number;
  log: string;
  outputs: string;
  summary: string;
  runnerTemp: string;
}

/**
 * Runs the "Run nexus" step as the runner would: its `run:` line through bash, `${{ inputs.* }}`
 * in its env replaced by `inputs`, and GITHUB_* variables pointing at temporary files.
 */
async function runAction(inputs: Record<string, string>, workspace: string): Promise<ActionRun> {
  const step = actionStep("Run nexus");
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(step.env)) {
    env[name] = value.replace(/\$\{\{ inputs\.([\w-]+) \}\}/g, (_, input: string) => inputs[input] ?? "");
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-gha-"));
  const outputsFile = path.join(dir, "github_output");
  const summaryFile = path.join(dir, "step_summary");
  writeFileSync(outputsFile, "");
  writeFileSync(summaryFile, "");
  const runnerTemp = mkdtempSync(path.join(dir, "runner-temp-"));
  const result = await execa("bash", ["-c", step.run], {
    cwd: workspace,
    reject: false,
    all: true,
    env: {
      ...env,
      CI: "true",
      GITHUB_ACTIONS: "true",
      GITHUB_ACTION_PATH: actionPath,
      GITHUB_OUTPUT: outputsFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      RUNNER_TEMP: runnerTemp,
      // Only the key given to the action may get in: no agent, no key in the environment.
      SSH_AUTH_SOCK: "",
      NEXUS_SSH_KEY: "",
    },
    timeout: 240_000,
  });
  return {
    exitCode: result.exitCode ?? -1,
    log: result.all ?? "",
    outputs: readFileSync(outputsFile, "utf8"),
    summary: readFileSync(summaryFile, "utf8"),
    runnerTemp,
  };
}

/** A workspace whose config has no key and no known_hosts: the action's inputs must provide both. */
function workspace(overrides: Record<string, unknown> = {}): string {
  const file = writeConfig({ ...overrides, ssh: { privateKey: undefined, knownHosts: undefined } });
  const config = JSON.parse(readFileSync(file, "utf8"));
  expect(config.ssh.privateKey).toBeUndefined();
  expect(config.ssh.knownHosts).toBeUndefined();
  return path.dirname(file);
}

function keyInputs(): { "ssh-private-key": string; "known-hosts": string } {
  const info = sandboxInfo();
  return {
    "ssh-private-key": readFileSync(info.clientKey, "utf8"),
    "known-hosts": readFileSync(info.knownHosts, "utf8"),
  };
}

/** The key's base64 lines: none may appear anywhere but in the runner's ::add-mask:: commands. */
function expectKeyNowhere(key: string, run: ActionRun): void {
  const body = key.split("\n").filter((l) => l !== "" && !l.startsWith("-----"));
  expect(body.length).toBeGreaterThan(0);
  const masks = run.log.split("\n").filter((l) => l.startsWith("::add-mask::"));
  expect(masks).toEqual(body.map((l) => `::add-mask::${l}`));
  const rest = run.log
    .split("\n")
    .filter((l) => !l.startsWith("::add-mask::"))
    .join("\n");
  for (const line of body) {
    expect(rest).not.toContain(line);
    expect(run.outputs).not.toContain(line);
    expect(run.summary).not.toContain(line);
  }
  // The key file lived in a private temp dir that is gone once nexus has exited.
  expect(readdirSync(run.runnerTemp)).toEqual([]);
}

describe("the GitHub Action (action.yml → scripts/action-run.sh → bundle/nexus.mjs)", () => {
  beforeAll(() => {
    actionPath = cleanActionCopy();
    expect(existsSync(path.join(actionPath, "node_modules"))).toBe(false);
    expect(existsSync(path.join(actionPath, "bundle", "nexus.mjs"))).toBe(true);
  });

  it("action.yml declares the inputs and outputs, and its one step runs the bundle: no install, no compiler", () => {
    for (const input of [
      "command",
      "config",
      "ssh-private-key",
      "ssh-key-passphrase",
      "known-hosts",
      "working-directory",
    ])
      expect(ACTION).toMatch(new RegExp(`\\n {2}${input}:\\n`));
    expect(ACTION).toMatch(/\n {2}release:\n.*\n {4}value: \$\{\{ steps\.nexus\.outputs\.release \}\}/);
    expect(ACTION).toMatch(/\n {2}result:\n.*\n {4}value: \$\{\{ steps\.nexus\.outputs\.result \}\}/);
    expect(ACTION).toContain("using: composite");
    expect(actionStep("Run nexus").run).toBe('bash "$GITHUB_ACTION_PATH/scripts/action-run.sh" run');
    expect(ACTION.match(/\n {4}- name: /g)).toHaveLength(1);
    const script = readFileSync(path.join(PROJECT_ROOT, "scripts", "action-run.sh"), "utf8");
    for (const text of [ACTION, script]) {
      expect(text).not.toMatch(/\bnpm (ci|install|run)\b|\bnpx\b|\btsc\b/);
      expect(text).not.toContain("bin/nexus.js");
    }
    expect(script).toContain('node "$action_dir/bundle/nexus.mjs"');
    // Inputs reach the script through env, never pasted into its text (no script injection).
    expect(ACTION).not.toMatch(/run: .*\$\{\{/);
    expect(existsSync(path.join(PROJECT_ROOT, "docs", "github-actions.md"))).toBe(true);
  });

  it("deploys: groups in the log, the summary table, release and result outputs, and the key in no output", async () => {
    const release = uniqueRelease("gha");
    const inputs = {
      command: `deploy --rolling --release-id ${release}`,
      config: "deploy.config.json",
      "working-directory": workspace(),
      ...keyInputs(),
    };
    const run = await runAction(inputs, os.tmpdir());
    expect(run.exitCode, run.log).toBe(0);

    expect(run.outputs.split("\n").filter(Boolean).sort()).toEqual([`release=${release}`, "result=success"]);

    expect(run.summary).toContain(`### ✅ nexus deploy: done (release ${release})`);
    expect(run.summary).toContain("| server | result | release | out of rotation | note |");
    for (const name of SERVERS) {
      expect(run.summary).toMatch(
        new RegExp(`\\| ${name} \\| deployed \\| \`${release}\` \\| \\d+\\.\\d\\ds \\|`),
      );
      expect(currentRelease(name)).toBe(release);
    }

    const opened = run.log.split("\n").filter((l) => l.startsWith("::group::"));
    const closed = run.log.split("\n").filter((l) => l === "::endgroup::");
    expect(opened.length).toBeGreaterThanOrEqual(SERVERS.length + 2);
    expect(closed.length).toBe(opened.length);
    for (const name of SERVERS)
      expect(opened.some((l) => l.startsWith("::group::roll: ") && l.includes(name))).toBe(true);
    expect(run.log).not.toContain("\x1b[");
    expect(run.log).not.toContain("s3cr3t-do-not-print");
    expectKeyNowhere(inputs["ssh-private-key"], run);
  });

  it("a failed deploy: an ::error annotation, result=failed, the restored fleet in the summary", async () => {
    const good = currentRelease("nexus-alpha");
    const inputs = {
      command: `deploy --release-id ${uniqueRelease("gha-bad")}`,
      config: "",
      "working-directory": workspace({ app: { root: fixture("app-unhealthy") }, health: { deadline: "6s" } }),
      ...keyInputs(),
    };
    const run = await runAction(inputs, PROJECT_ROOT);
    expect(run.exitCode, run.log).toBe(1);
    expect(run.log).toMatch(/^::error title=nexus%3A nexus-alpha::health gate failed: /m);
    expect(run.outputs).toMatch(/^result=failed$/m);
    expect(run.summary).toContain("### ❌ nexus deploy: FAILED: the fleet was restored");
    expect(run.summary).toMatch(/\| nexus-alpha \| rolled back \|/);
    expect(currentRelease("nexus-alpha")).toBe(good);
    expectKeyNowhere(inputs["ssh-private-key"], run);
  });

  it("a config error: annotated, result=failed, exit 2", async () => {
    const run = await runAction(
      { command: "nexus status", config: "missing.json", "working-directory": os.tmpdir(), ...keyInputs() },
      PROJECT_ROOT,
    );
    expect(run.exitCode, run.log).toBe(2);
    expect(run.log).toMatch(/^::error title=nexus::missing\.json: file not found/m);
    expect(run.outputs).toBe("result=failed\n");
    expect(run.summary).toMatch(/^### ❌ nexus (status|command): failed, nothing deployed/);
    expect(run.summary).toContain("missing.json: file not found");
  });

  it("every server refusing the connection: a step summary, result=failed, and no release output", async () => {
    const info = sandboxInfo();
    const servers = info.hosts.map((h) => ({
      name: h.name,
      host: h.address,
      port: 1,
      env: { HOST: h.address },
    }));
    const run = await runAction(
      {
        command: `deploy --release-id ${uniqueRelease("gha-refused")}`,
        "working-directory": workspace({ servers }),
        ...keyInputs(),
      },
      PROJECT_ROOT,
    );
    expect(run.exitCode, run.log).not.toBe(0);
    expect(run.log).toMatch(/refused/);
    expect(run.outputs).toBe("result=failed\n");
    expect(run.summary).toMatch(/^### ❌ nexus deploy: failed, nothing deployed/);
    expect(run.summary).toMatch(/refused/);
  });

  it("the command's arguments are parsed with quoting (nothing expanded), and a key with a passphrase works with ssh-key-passphrase", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-gha-pass-"));
    const key = path.join(dir, "id_ed25519");
    writeFileSync(key, readFileSync(sandboxInfo().clientKey), { mode: 0o600 });
    await execa("ssh-keygen", ["-q", "-p", "-f", key, "-P", "", "-N", "open sesame"]);
    const inputs = {
      command: `exec --only nexus-alpha -- 'printf "[%s]" "a  b" $(echo c)'`,
      "working-directory": workspace(),
      "ssh-private-key": readFileSync(key, "utf8"),
      "known-hosts": keyInputs()["known-hosts"],
    };
    const locked = await runAction(inputs, PROJECT_ROOT);
    expect(locked.exitCode, locked.log).not.toBe(0);
    expect(locked.log).toMatch(/passphrase/i);
    const run = await runAction({ ...inputs, "ssh-key-passphrase": "open sesame" }, PROJECT_ROOT);
    expect(run.exitCode, run.log).toBe(0);
    // One shell-text argument, run on the server: the quotes kept the two spaces.
    expect(run.log).toContain("[a  b][c]");
    expect(run.log).toContain("::add-mask::open sesame");
    expect(run.log.replace("::add-mask::open sesame", "")).not.toContain("open sesame");
  });

  it("a working-directory that does not exist: annotated, result=failed, exit 2", async () => {
    const run = await runAction({ "working-directory": "no-such-dir", ...keyInputs() }, PROJECT_ROOT);
    expect(run.exitCode, run.log).toBe(2);
    expect(run.log).toMatch(/^::error title=nexus::working-directory: no-such-dir is not a directory/m);
    expect(run.outputs).toBe("result=failed\n");
  });
});
