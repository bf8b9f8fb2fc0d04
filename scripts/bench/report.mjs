// Turns the benchmark's measurements into docs/benchmarks.md and a plain-text summary.
import { max, median, min, ms, ratio, secs, spread, table } from "./stats.mjs";

/** Issue 15: each server out of rotation (Nginx), median. */
const OOR_TARGET_S = 1.2;

const STEP_LABELS = {
  drain: "drain (mark down, nginx -t, reload and wait until in force, wait for 0 connections)",
  switch: "switch `current`",
  restart: "restart under PM2 (delete + start; Node and PM2 loaded before the drain)",
  gate: "health gate (3 passes 100 ms apart, at least 500 ms of uptime; PM2 check beside the last probe)",
  afterGate: "gate passed → enable begins (the capacity guard probes the others)",
  enable: "enable (remove down, nginx -t, reload and wait until in force)",
};

const SEGMENT_LABELS = {
  startup: "start-up: Node, the CLI's modules, the config",
  preflight: "connect (SSH), pack, preflight, locks",
  stage: "stage on every server (upload, sha256, extract, install), in parallel",
  roll: "roll: the batches, drain to enable",
  finish: "last server back in rotation → result printed",
  exit: "after the result: `pm2 save`, history, prune, unlock, close SSH",
};

const fmtSet = (values, digits = 2) =>
  values.length
    ? `${secs(min(values), digits)} / ${secs(median(values), digits)} / ${secs(max(values), digits)}`
    : "–";

function stepMedians(runs) {
  const servers = runs.flatMap((r) => r.servers);
  const out = {};
  for (const key of Object.keys(STEP_LABELS)) out[key] = median(servers.map((s) => s.ms[key]));
  return out;
}

/** Time between batches: the roll segment minus every server's drain-start-to-enable-done span. */
function betweenBatches(run) {
  // Servers of one batch are drained together: group them by their drain's start.
  const batches = new Map();
  for (const s of run.servers) {
    const span = (s.enableDone ?? s.drainStart) - s.drainStart;
    batches.set(s.drainStart, Math.max(batches.get(s.drainStart) ?? 0, span));
  }
  const busy = [...batches.values()].reduce((a, b) => a + b, 0);
  return (run.segments.roll - busy) / Math.max(1, batches.size);
}

/**
 * Requests sent after a server's drain had completed (no connection left from Nginx) and
 * before its enable began: traffic that reached a server nexus considered out of rotation.
 */
function servedWhileDrained(records, run) {
  let count = 0;
  let newProcess = 0;
  const examples = [];
  for (const s of run.servers) {
    if (s.drainDone === undefined || s.enableStart === undefined) continue;
    for (const r of records) {
      if (r.server !== s.server || r.failure || r.start <= s.drainDone || r.start >= s.enableStart) continue;
      count++;
      if (r.release && r.release === run.release) newProcess++;
      if (examples.length < 3) examples.push(`${s.server} +${((r.end - s.drainDone) / 1000).toFixed(2)} s`);
    }
  }
  return { count, newProcess, examples };
}

/** Names the steps that eat a budget, largest first, with their share. */
function eaters(parts, total) {
  return Object.entries(parts)
    .filter(([, v]) => Number.isFinite(v))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, v]) => `${k} ${secs(v / 1000)} (${Math.round((v / total) * 100)}%)`)
    .join(", ");
}

export function renderReport({
  machine,
  iterations,
  haproxy = [],
  stormOnly = [],
  scale,
  cli,
  chartIndex,
  settings,
  seconds,
}) {
  const n = iterations.length;
  const deploys = iterations.map((i) => i.nexus.deploy);
  const rollbacks = iterations.map((i) => i.nexus.rollback);
  const deployWall = deploys.map((d) => d.wall);
  const rollbackWall = rollbacks.map((d) => d.wall);
  const oor = outOfRotation(deploys);
  const rbOor = outOfRotation(rollbacks);
  const stage = deploys.map((d) => d.segments.stage / 1000);
  const nexusFailed = iterations.map(
    (i) =>
      i.nexus.windows.deploy.failed +
      i.nexus.windows.afterDeploy.failed +
      i.nexus.windows.rollback.failed +
      i.nexus.windows.afterRollback.failed,
  );
  const steps = stepMedians(deploys);
  const rbSteps = stepMedians(rollbacks);
  const segments = {};
  for (const key of Object.keys(SEGMENT_LABELS)) segments[key] = median(deploys.map((d) => d.segments[key]));
  const rbSegments = {};
  for (const key of Object.keys(SEGMENT_LABELS))
    rbSegments[key] = median(rollbacks.map((d) => d.segments[key]));
  const between = median(deploys.map(betweenBatches));

  const reloads = iterations.flatMap((i) => [i.nexus.deploy.reloads, i.nexus.rollback.reloads]);
  const resultLag = median([...deploys, ...rollbacks].map((d) => d.segments.finish));
  const targets = [
    {
      what: "failed requests during deploy + rollback, under load",
      target: "0",
      measured: `${nexusFailed.join(", ")} (per run)`,
      met: nexusFailed.every((f) => f === 0),
    },
    {
      what: "Nginx: each server out of rotation, median",
      target: `≤ ${OOR_TARGET_S} s`,
      measured: secs(median(oor)),
      met: median(oor) <= OOR_TARGET_S,
    },
    {
      what: "whole 3-server deploy, median",
      target: "≤ 7 s",
      measured: secs(median(deployWall)),
      met: median(deployWall) <= 7,
    },
    {
      what: "3-server rollback, median",
      target: "≤ 5 s",
      measured: secs(median(rollbackWall)),
      met: median(rollbackWall) <= 5,
    },
    {
      what: "Nginx reloads per 3-server deploy and per rollback (n + 1)",
      target: "4",
      measured: `${reloads.join(", ")} (deploy, rollback per run)`,
      met: reloads.every((r) => r === 4),
    },
    {
      what: "result printed after the last server is back in rotation, median",
      target: "≤ 0.3 s",
      measured: ms(resultLag),
      met: resultLag <= 300,
    },
    {
      what: "connect and preflight, 3 servers, median (deploy)",
      target: "≤ 0.5 s",
      measured: ms(segments.preflight),
      met: segments.preflight <= 500,
    },
  ];
  targets.push(...stormOnlyTargets(stormOnly));
  targets.push(...balancerTargets(iterations, haproxy));
  const targetTable = table(
    ["", "target", "measured", "met"],
    targets.map((t) => [t.what, t.target, t.measured, t.met ? "yes" : "**no**"]),
  );

  const timingTable = table(
    ["figure (3 servers, under load)", `median (min–max) of ${n} runs`],
    [
      ["total deploy time, process start to exit", spread(deployWall)],
      ["… as nexus reports it (summary `seconds`)", spread(deploys.map((d) => d.reported))],
      ["staging (all 3 servers in parallel)", spread(stage)],
      [`out of rotation per server, min / median / max (${oor.length} values)`, fmtSet(oor)],
      ["total rollback time, process start to exit", spread(rollbackWall)],
      [`rollback: out of rotation per server, min / median / max`, fmtSet(rbOor)],
    ],
  );

  const stepTable = table(
    ["per server, median", "deploy", "rollback"],
    [
      ...Object.entries(STEP_LABELS).map(([k, label]) => [label, ms(steps[k]), ms(rbSteps[k])]),
      [
        "= out of rotation (nexus's figure: reload in force → back in)",
        secs(median(oor)),
        secs(median(rbOor)),
      ],
      [
        "between two batches (capacity guard: health of the others)",
        ms(between),
        ms(median(rollbacks.map(betweenBatches))),
      ],
    ],
  );
  const segmentTable = table(
    ["whole command, median", "deploy", "rollback"],
    Object.entries(SEGMENT_LABELS).map(([k, label]) => [label, ms(segments[k]), ms(rbSegments[k])]),
  );

  const w = (pick) => iterations.map(pick);
  const loadRow = (label, before, during, after, afterLabel) => {
    const p99Ratio = median(during.map((d, i) => d.p99 / before[i].p99));
    return [
      label,
      String(median(during.map((d) => d.requests))),
      during.map((d) => d.failed).join(", "),
      `${after.map((d) => d.failed).join(", ")} (${afterLabel})`,
      during.map((d, i) => d.resent + after[i].resent).join(", "),
      `${ms(median(before.map((d) => d.p50)))} → ${ms(median(during.map((d) => d.p50)))}`,
      `${ms(median(before.map((d) => d.p99)))} → ${ms(median(during.map((d) => d.p99)))}`,
      ratio(p99Ratio),
    ];
  };
  const loadTable = table(
    [
      "under load",
      "requests during (median)",
      "failed during (per run)",
      "failed just after (per run)",
      "resent (per run)",
      "p50 before → during",
      "p99 before → during",
      "p99 during/before",
    ],
    [
      loadRow(
        "nexus deploy --rolling",
        w((i) => i.nexus.windows.before),
        w((i) => i.nexus.windows.deploy),
        w((i) => i.nexus.windows.afterDeploy),
        `${settings.gapMs / 1000} s`,
      ),
      loadRow(
        "nexus rollback",
        w((i) => i.nexus.windows.before),
        w((i) => i.nexus.windows.rollback),
        w((i) => i.nexus.windows.afterRollback),
        `${settings.tailMs / 1000} s`,
      ),
      loadRow(
        "naive restart (no drain)",
        w((i) => i.naive.windows.before),
        w((i) => i.naive.windows.during),
        w((i) => i.naive.windows.after),
        `${settings.tailMs / 1000} s`,
      ),
    ],
  );

  const pair = (f) => median(iterations.map(f));
  const nexusDeployFailed = pair((i) => i.nexus.windows.deploy.failed + i.nexus.windows.afterDeploy.failed);
  const naiveRunFailed = pair((i) => i.naive.windows.during.failed + i.naive.windows.after.failed);
  const failRatio =
    nexusDeployFailed === 0
      ? naiveRunFailed === 0
        ? 1
        : Number.POSITIVE_INFINITY
      : naiveRunFailed / nexusDeployFailed;
  const leaks = iterations.map((i) => ({
    deploy: servedWhileDrained(i.nexus.load.records, { release: i.nexus.release, ...i.nexus.deploy }),
    rollback: servedWhileDrained(i.nexus.load.records, i.nexus.rollback),
  }));
  const leakCounts = leaks.flatMap((l) => [l.deploy.count, l.rollback.count]);
  const leakIntro = `Requests sent after a server's drain had completed and before its enable began, yet answered by that server, per run: deploy ${leaks.map((l) => l.deploy.count).join(", ")} (of which by the new release, before nexus put it back: ${leaks.map((l) => l.deploy.newProcess).join(", ")}); rollback ${leaks.map((l) => l.rollback.count).join(", ")} (new process: ${leaks.map((l) => l.rollback.newProcess).join(", ")}).`;
  const leakText = leakCounts.every((n) => n === 0)
    ? `${leakIntro} A drain waits until Nginx holds no connection to the server and every worker from before its reload has exited: a retiring worker ("shutting down") still serves requests on client connections it had accepted, with the old upstream list. Under keep-alive load that wait is most of the drain time above.`
    : `${leakIntro} They should be 0: a drain waits for the workers retired by its reload to exit, within \`drainTimeout\`; a non-zero count means that wait timed out (see the warnings in the deploy's output).`;

  const compareTable = table(
    ["same iteration, median of runs", "nexus deploy", "naive restart", "naive / nexus"],
    [
      [
        "failed requests (during + just after)",
        String(nexusDeployFailed),
        String(naiveRunFailed),
        ratio(failRatio),
      ],
      [
        "time to put the release on 3 serving servers (nexus: roll segment)",
        secs(pair((i) => i.nexus.deploy.segments.roll / 1000)),
        secs(pair((i) => i.naive.seconds)),
        ratio(pair((i) => i.naive.seconds / (i.nexus.deploy.segments.roll / 1000))),
      ],
      [
        "p99 latency during",
        ms(pair((i) => i.nexus.windows.deploy.p99)),
        ms(pair((i) => i.naive.windows.during.p99)),
        ratio(pair((i) => i.naive.windows.during.p99 / i.nexus.windows.deploy.p99)),
      ],
    ],
  );

  const base = scale.find((s) => s.size === 3 && s.rows);
  const scaleRows = [];
  for (const s of scale) {
    if (!s.rows) {
      scaleRows.push([String(s.size), "1, 25%", "–", "–", `skipped: ${s.skipped}`, "–", "–"]);
      continue;
    }
    for (const row of s.rows) {
      const walls = row.runs.map((r) => r.wall);
      const ref = base?.rows.find((r) => r.label === row.label);
      const refMedian = ref ? median(ref.runs.map((r) => r.wall)) : Number.NaN;
      const serverOor = row.runs.flatMap((r) => r.servers.map((x) => x.outOfRotation));
      scaleRows.push([
        String(s.size),
        row.label,
        String(row.perBatch),
        row.sameAs ? `as batch ${row.sameAs}` : String(row.runs.length),
        spread(walls),
        secs(median(serverOor)),
        s.size === 3 ? "1×" : ratio(median(walls) / refMedian),
      ]);
    }
  }
  const scaleTable = table(
    [
      "servers",
      "batch size",
      "servers per batch",
      "runs",
      "total deploy, median (min–max)",
      "out of rotation, median",
      "vs 3 servers",
    ],
    scaleRows,
  );

  const preconnectNote = heldDrainsNote([...deploys, ...rollbacks]);
  const missed = [];
  const oorMedian = median(oor);
  const probes = median(deploys.flatMap((d) => d.servers.map((x) => x.gateProbes)));
  const emptySsh = cli?.true;
  const pm2Call = cli ? cli["PM2_SILENT=true pm2 jlist >/dev/null"] - cli.true : Number.NaN;
  if (!targets[1].met) {
    missed.push(
      `- **Out of rotation ${secs(oorMedian)} > ${OOR_TARGET_S} s.** Per server (medians): ${eaters(
        {
          "health gate": steps.gate,
          drain: steps.drain,
          enable: steps.enable,
          restart: steps.restart,
          "gate → enable (capacity guard)": steps.afterGate,
          switch: steps.switch,
        },
        oorMedian * 1000,
      )}. The gate took ${Number.isFinite(probes) ? probes : "?"} probes (median): every 20 ms until the new process answers, then 3 must pass 100 ms apart and the process must have been up 500 ms (\`health.minUptime\`, the gate's floor); PM2's check runs beside the last probe, through the restart's own PM2 connection (a \`pm2\` CLI call would cost ${ms(pm2Call)} here on top of an empty ssh command, ${ms(emptySsh)}). Drain and enable are each one SSH round trip running \`nginx -t\`, the reload and the wait until the old workers have handed over (Nginx's master waits 100 ms before retiring them); the drain then waits on the balancer host until Nginx holds no connection to the server and the retired workers have exited. ${retiredWorkersNote(deploys, rollbacks, stormOnly)} That wait is what keeps the drained server's traffic at 0 (the table below); the HAProxy driver has no retired workers. The gate's floor is \`health.minUptime\` (500 ms, counted from the process's start by PM2's clock).`,
    );
  }
  if (!targets[2].met) {
    missed.push(
      `- **Deploy ${secs(median(deployWall))} > 7 s.** The command's segments (medians): ${eaters(
        {
          roll: segments.roll,
          stage: segments.stage,
          "connect/preflight": segments.preflight,
          "start-up": segments.startup,
          finish: segments.finish,
          exit: segments.exit,
        },
        median(deployWall) * 1000,
      )}. The roll is 3 × (out of rotation ≈ ${secs(oorMedian)}) plus ${ms(between)} between batches.`,
    );
  }
  if (!targets[3].met) {
    missed.push(
      `- **Rollback ${secs(median(rollbackWall))} > 5 s.** Its segments (medians): ${eaters(
        {
          roll: rbSegments.roll,
          "connect/preflight": rbSegments.preflight,
          "start-up": rbSegments.startup,
          finish: rbSegments.finish,
          exit: rbSegments.exit,
        },
        median(rollbackWall) * 1000,
      )}; with nothing to transfer, it is almost all roll: 3 × out of rotation (${secs(median(rbOor))}).`,
    );
  }

  const haproxyOor = targets.find((t) => t.what.startsWith("HAProxy: each server out of rotation"));
  if (haproxyOor && !haproxyOor.met) {
    const runs = commandsOf(haproxy);
    const hSteps = stepMedians(runs);
    const hOor = median(outOfRotation(runs));
    missed.push(
      `- **HAProxy: out of rotation ${secs(hOor)} > 0.8 s.** Per server (medians): ${eaters(
        {
          "health gate": hSteps.gate,
          drain: hSteps.drain,
          restart: hSteps.restart,
          enable: hSteps.enable,
          switch: hSteps.switch,
        },
        hOor * 1000,
      )}. The drain is \`state drain\`, polls of \`show stat\` every 10 ms until the server has no session (the storm's POSTs take 100–150 ms each), then \`state maint\`, each a message on one open admin socket connection (~0.5 ms); the gate's floor is \`health.minUptime\` (500 ms from the process's start), and the restart (${ms(hSteps.restart)}) is PM2 stopping the old process (its SIGINT handler closes its server) and forking the new one.`,
    );
  }

  const machineTable = table(
    ["", ""],
    [
      ["CPU", `${machine.cores} × ${machine.cpu}`],
      ["memory", `${machine.memoryGiB.toFixed(1)} GiB`],
      ["Node.js", machine.node],
      ["OS", machine.os],
      ["Nginx", machine.nginx],
      ["OpenSSH", machine.openssh],
      ["PM2 / autocannon", `${machine.pm2} / ${machine.autocannon}`],
      [
        "load average (1 min) at start / end",
        machine.loadAverage ? machine.loadAverage.map((v) => v.toFixed(2)).join(" / ") : "–",
      ],
    ],
  );

  const balancerTable = balancerComparison(iterations, haproxy, stormOnly);

  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const markdown = `# Benchmarks

Generated by \`npm run bench\` (scripts/bench.mjs) on ${date}; the measurements took ${Math.round(seconds)} s. Do not edit by hand: run it again (\`node scripts/bench.mjs --render\` redraws it from the last run's data).

Everything runs on one machine, on loopback: the bench starts its own sandbox (\`.sandbox-bench\`,
127.0.9.x: an sshd per server, PM2, one Nginx with \`least_conn\`, \`max_fails=3 fail_timeout=30s\`,
\`keepalive 32\`) and stops it at the end. The app is \`fixtures/app\`. The deploy config is the sandbox's
with nexus's defaults (health: 3 passes 100 ms apart, 500 ms minimum uptime; batch size 1). Each figure is the median of
several runs; each comparison is a ratio between measurements of the same bench run.

What real servers add (a login shell slowed by \`~/.bashrc\`, 40 ms of round trip), a bastion, and
fleets of 12 and 50 servers: [benchmarks-servers.md](benchmarks-servers.md) (scripts/bench-servers.mjs).
The surge strategy through HAProxy, fleets of 3 and 1, and against the drain:
[benchmarks-surge.md](benchmarks-surge.md) (scripts/bench-surge.mjs).

## Machine

${machineTable}

## Targets

${targetTable}
${preconnectNote ? `\n${preconnectNote}\n` : ""}${missed.length ? `\nWhere a target is missed, what eats the time:\n\n${missed.join("\n")}\n` : ""}
A standard Ansible \`serial: 1\` rolling playbook with the same drain is quoted at ~29 s for such a
cluster and ~8.7 s out of rotation per server (figures from the issue, not measured here): nexus's
medians are ${ratio(29 / median(deployWall))} and ${ratio(8.7 / oorMedian)} shorter.

## Deploy and rollback, 3 servers, under load

${timingTable}

Where the time goes:

${segmentTable}

${stepTable}

## Requests before vs during, nexus vs the naive restart

Load: ${settings.rate} req/s offered through Nginx for the whole scenario (autocannon, bounded and
self-stopping): two \`GET /\` for one \`POST /api/orders\` with a JSON body (the app holds each POST
100–150 ms), 3/4 over keep-alive connections, 1/4 over a fresh connection per request. "Before" is
the ${(settings.beforeMs - 500) / 1000} s before the command, "during" the command itself (process
start to exit), "just after" the following seconds. Latency is to the response headers, of
successful requests. A failed request is a non-2xx, a reset or closed connection, or no response
in 5 s.

${loadTable}

${leakText}

${compareTable}

What "naive" is: for each server in turn, over ssh, \`current\` is switched to the release
nexus had just deployed and rolled back from (so it is on disk, installed, with its PM2 ecosystem
file), and the app is restarted with the very same PM2 delete + start nexus runs; then it waits
until the new process answers \`/health\` once before the next server. The switch and the restart
are nexus's own; what is left out is taking the server out of Nginx first (drain, reload barrier,
enable) and the full gate before traffic comes back. Nginx keeps sending requests to each
server while it restarts; its connection errors count against \`max_fails\`, each restarted server
is disabled for \`fail_timeout\` (30 s) by each worker that saw 3 errors, and once a worker has
disabled all three it answers 502 ("no live upstreams") to everything until they expire. The
bench reloads Nginx after each naive run so that the next measurement starts clean.

"Resent": when an Nginx worker shuts down after a reload, it closes its idle keep-alive client
connections; a request written at that very instant is never read, and the client sees the
connection close with no response byte. Browsers send such a request again on a new connection
(a reused connection that closed before any response), and so does the harness, once, counting
the request by the outcome of the second try and its latency from the first. These are listed so
that nothing is hidden; they are not failures of either deploy method.

## Nginx vs HAProxy under the keep-alive POST storm

Beside the mix above, each run also sends the storm of issue 15 through the balancer: ${iterations[0]?.nexus.storm?.connections ?? 30}
keep-alive connections (one Node \`http.Agent({ keepAlive: true })\`), each sending \`POST /api/orders\`
back to back, never sending a failed request again, as server-to-server callers do. A reset is
counted on a reused socket (one that had served an earlier request) or on a fresh one. Nginx's
reloads make its old workers close idle keep-alive client connections: a POST written at that
instant is reset. HAProxy's runtime API changes rotation with no reload. See docs/balancers.md.

${balancerTable}

## Timeline

![Throughput and latency during a rolling deploy and a rollback with nexus, and during the naive restart](benchmark-timeline.svg)

Run ${chartIndex + 1} of ${n} (the median deploy). Bars: responses per second in 250 ms buckets,
coloured by the release that answered, failures in red; lines: p50 and p99 latency in 500 ms
buckets (log scale). Each server's lane shows when it was out of rotation (drain → enable) or, for
the naive way, restarting until healthy; the dashed lines carry each drain and enable across the
plots.

## Scaling

How a deploy's total time grows with the number of sandbox servers, with no load. "25%" is
\`rolling.batchSize: "25%"\`, rounded down by nexus (at least 1 server per batch). All servers
share the same ${machine.cores} cores, so more servers also means more processes per core.

${scaleTable}
`;

  const text = [
    "Targets",
    targetTable,
    ...(preconnectNote ? ["", preconnectNote] : []),
    ...(missed.length ? ["", ...missed] : []),
    "",
    "Deploy and rollback, 3 servers, under load",
    timingTable,
    "",
    segmentTable,
    "",
    stepTable,
    "",
    "Requests before vs during",
    loadTable,
    "",
    "Nginx vs HAProxy under the keep-alive POST storm",
    balancerTable,
    "",
    leakText,
    "",
    compareTable,
    "",
    "Scaling (no load)",
    scaleTable,
    "",
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB.toFixed(1)} GiB, Node ${machine.node}, ${machine.os}`,
  ].join("\n");
  return { markdown, text };
}

/** Each server's out-of-rotation seconds over these commands (analyze()d deploys or rollbacks). */
function outOfRotation(commands) {
  return commands.flatMap((d) => d.servers.map((s) => s.outOfRotation)).filter(Number.isFinite);
}

/** The deploy and the rollback of each of these runs. */
function commandsOf(runs) {
  return runs.flatMap((r) => [r.deploy, r.rollback]);
}

/** The drain lines' split (nexus.mjs drainWait), medians over every drain of these commands. */
function drainSplit(commands) {
  const waits = commands.flatMap((c) => c.servers.map((s) => s.drainWait)).filter(Boolean);
  return {
    inFlight: median(waits.map((w) => w.inFlightMs)),
    retired: median(waits.map((w) => w.retiredMs)),
  };
}

/**
 * How many Nginx drains under the mix waited for a retired worker beyond their in-flight requests
 * (a preconnected connection it held): the out-of-rotation figures are bimodal because of them,
 * so a median on either side of a target is partly luck.
 */
function heldDrainsNote(commands) {
  const drains = commands.flatMap((c) => c.servers).filter((s) => s.drainWait);
  if (drains.length === 0) return "";
  const isHeld = (s) => s.drainWait.retiredMs - s.drainWait.inFlightMs > 100;
  const held = drains.filter(isHeld);
  const free = drains.filter((s) => !isHeld(s));
  const oor = (list) => secs(median(list.map((s) => s.outOfRotation).filter(Number.isFinite)));
  const extra = median(held.map((s) => s.drainWait.retiredMs - s.drainWait.inFlightMs));
  return `Nginx under the mix: ${held.length} of ${drains.length} drains waited for a worker retired by the reload beyond their in-flight requests${held.length ? ` (median ${ms(extra)} more)` : ""}: it held a connection the mix's client had opened and not yet written to, as a browser's preconnect does (docs/balancers.md, "How long an Nginx drain waits"). Out of rotation (medians): ${free.length ? `${oor(free)} for the others` : "none without"}${held.length ? `, ${oor(held)} for those` : ""}; the Nginx medians above depend on how many fall in a run.`;
}

/** Why Nginx's drain is long under the mix, measured: in-flight requests vs retired workers. */
function retiredWorkersNote(deploys, rollbacks, stormOnly) {
  const mixed = drainSplit([...deploys, ...rollbacks]);
  if (!Number.isFinite(mixed.inFlight)) return "";
  const alone = drainSplit(commandsOf(stormOnly));
  const aloneOor = median(outOfRotation(commandsOf(stormOnly)));
  const storm = Number.isFinite(alone.inFlight)
    ? ` Under the storm alone (clients that send as soon as they connect) the retired workers are gone ${ms(alone.retired)} after the reload (in-flight requests: ${ms(alone.inFlight)}), and a server is out of rotation ${secs(aloneOor)}.`
    : "";
  return `Its drain line says what the wait was for: under this load the requests in flight to the server were done ${ms(mixed.inFlight)} after the reload was in force, and the Nginx workers retired by the reload gone ${ms(mixed.retired)} after it (medians). The difference is the mix's preconnected connections (the note under the targets): a retired worker keeps such a connection and routes its request, when it comes, with the old server list, where \`least_conn\` prefers the drained server (it has no connections); so the drain waits for it.${storm}`;
}

/** Targets under the storm alone: what the Nginx driver costs when no client preconnects. */
function stormOnlyTargets(stormOnly) {
  if (stormOnly.length === 0) return [];
  const oor = outOfRotation(commandsOf(stormOnly));
  const deployWall = median(stormOnly.map((r) => r.deploy.wall));
  const rollbackWall = median(stormOnly.map((r) => r.rollback.wall));
  const label = `Nginx, storm alone (${stormOnly.length} runs, no preconnecting client)`;
  return [
    {
      what: `${label}: each server out of rotation, median`,
      target: `≤ ${OOR_TARGET_S} s`,
      measured: secs(median(oor)),
      met: median(oor) <= OOR_TARGET_S,
    },
    {
      what: `${label}: deploy / rollback, median`,
      target: "≤ 7 s / ≤ 5 s",
      measured: `${secs(deployWall)} / ${secs(rollbackWall)}`,
      met: deployWall <= 7 && rollbackWall <= 5,
    },
  ];
}

/** Per run: failed requests of the mix and of the storm, over the deploy and the rollback. */
function failedPerRun(runs) {
  return runs.map((r) => ({
    mix: r.load.records.filter((x) => x.failure).length,
    storm: r.storm?.all.failed ?? Number.NaN,
    stormRequests: r.storm?.all.requests ?? 0,
    reused: r.storm?.all.resetReused ?? Number.NaN,
    fresh: r.storm?.all.resetFresh ?? Number.NaN,
  }));
}

function balancerTargets(iterations, haproxy) {
  if (haproxy.length === 0) return [];
  const failed = failedPerRun(haproxy);
  const oor = outOfRotation(commandsOf(haproxy));
  const nginx = failedPerRun(iterations.map((i) => i.nexus));
  return [
    {
      what: `HAProxy: failed requests (mix + storm) over ${haproxy.length} deploys and ${haproxy.length} rollbacks`,
      target: "0",
      measured: failed.map((f) => f.mix + f.storm).join(", "),
      met: failed.every((f) => f.mix + f.storm === 0),
    },
    {
      what: "HAProxy: each server out of rotation, median",
      target: "≤ 0.8 s",
      measured: secs(median(oor)),
      met: median(oor) <= 0.8,
    },
    {
      what: "Nginx: storm requests reset per deploy + rollback (reported)",
      target: "reported",
      measured: nginx.map((f) => f.storm).join(", "),
      met: true,
    },
  ];
}

function balancerComparison(iterations, haproxy, stormOnly = []) {
  const rows = [];
  for (const [label, runs] of [
    ["Nginx (reloads)", iterations.map((i) => i.nexus)],
    ["Nginx, storm alone (no mix)", stormOnly],
    ["HAProxy (runtime API)", haproxy],
  ]) {
    if (runs.length === 0) continue;
    const failed = failedPerRun(runs);
    const oor = outOfRotation(commandsOf(runs));
    rows.push([
      label,
      String(runs.length),
      runs === stormOnly ? "–" : failed.map((f) => f.mix).join(", "),
      failed.map((f) => `${f.storm} of ${f.stormRequests}`).join(", "),
      failed.map((f) => `${f.reused} / ${f.fresh}`).join(", "),
      secs(median(oor)),
      secs(median(runs.map((r) => r.deploy.wall))),
      secs(median(runs.map((r) => r.rollback.wall))),
    ]);
  }
  return table(
    [
      "balancer",
      "runs (deploy + rollback)",
      "mix failed (per run)",
      "storm failed (per run)",
      "storm resets reused / fresh socket",
      "out of rotation, median",
      "deploy, median",
      "rollback, median",
    ],
    rows,
  );
}
