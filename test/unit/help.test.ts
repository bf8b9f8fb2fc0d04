import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";

/** Every command path, sandbox subcommands included: ["deploy"], ["sandbox", "up"], ... */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const here = [...prefix, sub.name()];
    return [here, ...commandPaths(sub, here)];
  });
}

/** Parses argv with a fresh program whose output (and exits) are captured instead of the process's. */
function run(args: string[]): { out: string; err: string; code?: string } {
  let out = "";
  let err = "";
  const program = buildProgram(() => {});
  const capture = (command: Command) => {
    command.exitOverride();
    command.configureOutput({
      writeOut: (text) => {
        out += text;
      },
      writeErr: (text) => {
        err += text;
      },
    });
    for (const sub of command.commands) capture(sub);
  };
  capture(program);
  try {
    program.parse(["node", "nexus", ...args]);
  } catch (error) {
    return { out, err, code: (error as { code?: string }).code };
  }
  return { out, err };
}

describe("--help", () => {
  const paths = commandPaths(buildProgram(() => {}));

  it("knows the commands users expect", () => {
    const names = paths.map((p) => p.join(" "));
    for (const name of ["deploy", "rollback", "status", "init", "nginx-config", "sandbox up", "sandbox down"])
      expect(names).toContain(name);
  });

  it.each([[[]], ...paths.map((p) => [p])])("nexus %s --help shows an example", (path: string[]) => {
    const { out, code } = run([...path, "--help"]);
    expect(code).toBe("commander.helpDisplayed");
    expect(out).toMatch(/\nExamples?:\n {2}nexus /);
  });
});

describe("unknown commands", () => {
  it("suggest the closest one", () => {
    const { err, code } = run(["deplyo"]);
    expect(code).toBe("commander.unknownCommand");
    expect(err).toContain("Did you mean deploy?");
  });

  it("suggest among subcommands too", () => {
    const { err } = run(["sandbox", "stauts"]);
    expect(err).toContain("Did you mean status?");
  });
});
