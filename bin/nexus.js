#!/usr/bin/env node
import { endOutputQuietlyOnClosedPipe } from "../dist/cli/closed-pipes.js";
import { main } from "../dist/cli/main.js";

endOutputQuietlyOnClosedPipe(process.stdout, process.stderr);

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`nexus: internal error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
