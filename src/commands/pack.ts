import { stat } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { describeLeftOut, selectConfiguredApp, writeTarball } from "../artifact/pack.js";
import { action, type SetExit } from "../cli/action.js";
import { readConfig } from "../cli/context.js";
import { printResult } from "../cli/result.js";
import { EXIT, UsageError } from "../errors.js";
import { formatBytes } from "../report/format.js";

/** `nexus pack [--list] [-o FILE]`: what the artifact of a deploy holds, listed or written. */
export function packCommand(setExit: SetExit): Command {
  return new Command("pack")
    .description("list (--list) or write (-o) the artifact a deploy would ship: the app, nothing else")
    .option("--list", "print the files that ship, one per line, and nothing else on stdout")
    .option("-o, --output <file>", "write the .tar.gz artifact to this file")
    .addHelpText(
      "after",
      `
What ships: the app root, less node_modules, .git, logs, *.log, .env* and .npmrc, less nexus
config files (deploy.config.json, deploy.<name>.json, any JSON with servers and balancer: said on
stderr), less what the app's .gitignore and .nexusignore files (nested too) and app.exclude leave
out; app.include ships a path even so. Files that look like secrets (.env*, *.pem, id_*) are named
in a warning. With app.workspace, only the workspace root's manifests (package.json, lockfile,
pnpm-workspace.yaml, …), the package and the workspace packages it depends on are walked.

Examples:
  nexus pack --list
  nexus pack -o release.tar.gz
  nexus --json pack --list | jq -r '.files[].path'`,
    )
    .action(
      action(setExit, async ({ reporter, global }, flags: { list?: boolean; output?: string }) => {
        const config = readConfig(global);
        const root = path.resolve(config.app.root);
        const selection = await selectConfiguredApp(config);
        for (const message of selection.warnings) reporter.emit({ type: "warn", message });
        const leftOut = describeLeftOut(selection.leftOut);
        if (leftOut) reporter.emit({ type: "info", message: leftOut });
        let written: { output: string; sha256: string; compressedBytes: number } | undefined;
        if (flags.output) {
          const output = path.resolve(flags.output);
          const { sha256 } = await writeTarball(root, selection.files, output).catch(
            (error: NodeJS.ErrnoException) => {
              // A directory, a missing parent, no permission: the flag's fault, said as such.
              if (!error.code || (error.path && path.resolve(error.path) !== output)) throw error;
              throw new UsageError(`--output ${flags.output}: cannot write it (${error.code})`);
            },
          );
          written = { output, sha256, compressedBytes: (await stat(output)).size };
        }
        if (global.json) {
          printResult({
            command: "pack",
            root,
            files: selection.files,
            count: selection.files.length,
            bytes: selection.bytes,
            ...written,
            warnings: selection.warnings,
            leftOut: selection.leftOut,
          });
          return EXIT.ok;
        }
        if (flags.list || !written) {
          for (const file of selection.files) process.stdout.write(`${file.path}\n`);
        }
        const total = `${selection.files.length} files, ${formatBytes(selection.bytes)} before compression`;
        reporter.emit({
          type: "info",
          message: written
            ? `wrote ${path.relative(process.cwd(), written.output) || written.output}: ${total}, ${formatBytes(written.compressedBytes)} compressed, sha256 ${written.sha256}`
            : total,
        });
        return EXIT.ok;
      }),
    );
}
