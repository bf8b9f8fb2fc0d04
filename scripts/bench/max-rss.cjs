// Preloaded into the CLI by the bench (NODE_OPTIONS=--require): writes the process's peak RSS
// (KiB, from getrusage) to $BENCH_RSS_FILE as it exits.
const { writeFileSync } = require("node:fs");

process.on("exit", () => {
  try {
    if (process.env.BENCH_RSS_FILE)
      writeFileSync(process.env.BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
  } catch {}
});
