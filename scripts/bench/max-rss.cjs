// Preloaded into the CLI by the bench (NODE_OPTIONS=--require): writes the process's peak RSS
// (KiB, from getrusage) and the CPU time it used (ms, user + system) to $BENCH_RSS_FILE as it exits.
const { writeFileSync } = require("node:fs");

process.on("exit", () => {
  const file = process.env.BENCH_RSS_FILE;
  if (!file) return;
  try {
    const usage = process.resourceUsage();
    writeFileSync(file, `${usage.maxRSS} ${Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000)}`);
  } catch {}
});
