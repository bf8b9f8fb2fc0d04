// Hand-written SVG: throughput and latency over a deploy's timeline, one panel per scenario, with
// each server's drain and enable (or naive restart) marked. No charting library.

const WIDTH = 1000;
const LEFT = 150;
const RIGHT = 20;
const PLOT_W = WIDTH - LEFT - RIGHT;
const THROUGHPUT_H = 130;
const LATENCY_H = 100;
const LANE_H = 15;
const BUCKET_MS = 500;
const LATENCY_BUCKET_MS = 500;

const RELEASE_COLORS = ["#7f93c9", "#4fae85", "#c9a04a", "#a77cc2"];
const FAILED = "#d7301f";
const P50 = "#555555";
const P99 = "#e6550d";
const DRAIN = "#5b6fb0";
const ENABLE = "#2f8f5b";

const esc = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const f = (n) => (Math.round(n * 10) / 10).toString();

function text(x, y, content, attrs = "") {
  return `<text x="${f(x)}" y="${f(y)}" ${attrs}>${esc(content)}</text>`;
}

function niceStep(span, target) {
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const n = raw / pow;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * pow;
}

function quantile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/**
 * One scenario. `panel`: { title, t0, t1 (ms since the epoch), records (from the load harness),
 * commands: [{ label, start, end }], lanes: [{ label, spans: [{ start, end, kind: "out"|"restart" }],
 * marks: [{ t, label, kind: "drain"|"enable"|"restart" }] }] }.
 */
function renderPanel(panel, top, msPerPx) {
  const { t0, t1, records } = panel;
  // The same time scale in every panel, so that durations compare at a glance.
  const plotW = (t1 - t0) / msPerPx;
  const x = (t) => LEFT + (t - t0) / msPerPx;
  const out = [];
  let y = top;
  out.push(text(LEFT, y + 14, panel.title, 'font-size="14" font-weight="600"'));
  y += 24;

  // Commands: a bar over the plots.
  for (const c of panel.commands) {
    out.push(
      `<rect x="${f(x(c.start))}" y="${f(y)}" width="${f(Math.max(1, x(c.end) - x(c.start)))}" height="12" fill="#e9e9ef" stroke="#b9b9c6"/>`,
      // Inside the bar, or after it when the bar is too short for the label.
      (() => {
        const label = `${c.label} (${((c.end - c.start) / 1000).toFixed(1)} s)`;
        const inside = label.length * 5.6 < x(c.end) - x(c.start) - 8;
        return text(inside ? x(c.start) + 4 : x(c.end) + 4, y + 10, label, 'font-size="10"');
      })(),
    );
  }
  y += 18;

  // Throughput: responses per second in 250 ms buckets, stacked by release, failures on top.
  const releases = [];
  for (const r of records)
    if (r.release && !r.failure && !releases.includes(r.release)) releases.push(r.release);
  // Whole buckets only: a partial last one would understate the rate.
  const buckets = Math.floor((t1 - t0) / BUCKET_MS);
  const counts = Array.from({ length: buckets }, () => ({ byRelease: releases.map(() => 0), failed: 0 }));
  for (const r of records) {
    const i = Math.floor((r.end - t0) / BUCKET_MS);
    if (i < 0 || i >= buckets) continue;
    if (r.failure) counts[i].failed++;
    else {
      const k = releases.indexOf(r.release);
      if (k >= 0) counts[i].byRelease[k]++;
    }
  }
  const perSecond = 1000 / BUCKET_MS;
  const peak = Math.max(
    1,
    ...counts.map((c) => (c.failed + c.byRelease.reduce((a, b) => a + b, 0)) * perSecond),
  );
  const tStep = niceStep(peak, 3);
  const yMax = Math.ceil(peak / tStep) * tStep;
  const ty = (v) => y + THROUGHPUT_H - (v / yMax) * THROUGHPUT_H;
  out.push(
    `<rect x="${LEFT}" y="${f(y)}" width="${f(plotW)}" height="${THROUGHPUT_H}" fill="#fcfcfd" stroke="#ddd"/>`,
  );
  for (let v = 0; v <= yMax; v += tStep) {
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${f(ty(v))}" y2="${f(ty(v))}" stroke="#eee"/>`,
      text(LEFT - 6, ty(v) + 3, v, 'font-size="10" text-anchor="end" fill="#666"'),
    );
  }
  out.push(
    text(
      LEFT - 40,
      y + THROUGHPUT_H / 2,
      "responses/s",
      `font-size="10" text-anchor="middle" fill="#444" transform="rotate(-90 ${f(LEFT - 40)} ${f(y + THROUGHPUT_H / 2)})"`,
    ),
  );
  const bw = BUCKET_MS / msPerPx;
  counts.forEach((c, i) => {
    let base = 0;
    const parts = [
      ...c.byRelease.map((n, k) => [n, RELEASE_COLORS[k % RELEASE_COLORS.length]]),
      [c.failed, FAILED],
    ];
    for (const [n, color] of parts) {
      if (n === 0) continue;
      const v = n * perSecond;
      const width = Math.min(bw, LEFT + plotW - (LEFT + i * bw)) - 0.6;
      out.push(
        `<rect x="${f(LEFT + i * bw)}" y="${f(ty(base + v))}" width="${f(Math.max(0.5, width))}" height="${f(ty(base) - ty(base + v))}" fill="${color}"/>`,
      );
      base += v;
    }
  });
  const throughputTop = y;
  y += THROUGHPUT_H + 8;

  // Latency: p50 and p99 of the successful requests, 500 ms buckets, log scale.
  const lb = Math.floor((t1 - t0) / LATENCY_BUCKET_MS);
  const lat = Array.from({ length: lb }, () => []);
  for (const r of records) {
    const i = Math.floor((r.end - t0) / LATENCY_BUCKET_MS);
    if (i >= 0 && i < lb && !r.failure) lat[i].push(r.end - r.start);
  }
  const maxLat = Math.max(1000, ...lat.flat());
  const decades = Math.ceil(Math.log10(maxLat));
  const ly = (v) => y + LATENCY_H - (Math.log10(Math.max(1, v)) / decades) * LATENCY_H;
  out.push(
    `<rect x="${LEFT}" y="${f(y)}" width="${f(plotW)}" height="${LATENCY_H}" fill="#fcfcfd" stroke="#ddd"/>`,
  );
  for (let d = 0; d <= decades; d++) {
    const v = 10 ** d;
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${f(ly(v))}" y2="${f(ly(v))}" stroke="#eee"/>`,
      text(
        LEFT - 6,
        ly(v) + 3,
        v >= 1000 ? `${v / 1000} s` : `${v} ms`,
        'font-size="10" text-anchor="end" fill="#666"',
      ),
    );
  }
  out.push(
    text(
      LEFT - 52,
      y + LATENCY_H / 2,
      "latency",
      `font-size="10" text-anchor="middle" fill="#444" transform="rotate(-90 ${f(LEFT - 52)} ${f(y + LATENCY_H / 2)})"`,
    ),
  );
  for (const [p, color] of [
    [0.5, P50],
    [0.99, P99],
  ]) {
    const points = [];
    lat.forEach((values, i) => {
      if (values.length === 0) return;
      values.sort((a, b) => a - b);
      points.push(`${f(LEFT + ((i + 0.5) * LATENCY_BUCKET_MS) / msPerPx)},${f(ly(quantile(values, p)))}`);
    });
    if (points.length)
      out.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
  }
  const plotsBottom = y + LATENCY_H;
  y += LATENCY_H + 8;

  // Marks across both plots, then one lane per server.
  for (const lane of panel.lanes) {
    for (const m of lane.marks) {
      const color = m.kind === "enable" ? ENABLE : m.kind === "drain" ? DRAIN : FAILED;
      out.push(
        `<line x1="${f(x(m.t))}" x2="${f(x(m.t))}" y1="${f(throughputTop)}" y2="${f(plotsBottom)}" stroke="${color}" stroke-width="0.8" stroke-dasharray="3 3" opacity="0.7"/>`,
      );
    }
  }
  for (const lane of panel.lanes) {
    out.push(text(LEFT - 6, y + LANE_H - 4, lane.label, 'font-size="10" text-anchor="end" fill="#333"'));
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${f(y + LANE_H / 2)}" y2="${f(y + LANE_H / 2)}" stroke="#eee"/>`,
    );
    for (const s of lane.spans) {
      const fill = s.kind === "restart" ? "#f4b9ae" : "#c9d1ea";
      out.push(
        `<rect x="${f(x(s.start))}" y="${f(y + 2)}" width="${f(Math.max(1, x(s.end) - x(s.start)))}" height="${LANE_H - 4}" fill="${fill}"/>`,
      );
    }
    for (const m of lane.marks) {
      const color = m.kind === "enable" ? ENABLE : m.kind === "drain" ? DRAIN : FAILED;
      const anchor = m.kind === "enable" ? "start" : "end";
      const dx = m.kind === "enable" ? 3 : -3;
      out.push(
        `<line x1="${f(x(m.t))}" x2="${f(x(m.t))}" y1="${f(y + 1)}" y2="${f(y + LANE_H - 1)}" stroke="${color}" stroke-width="2"/>`,
        text(x(m.t) + dx, y + LANE_H - 4, m.label, `font-size="9" text-anchor="${anchor}" fill="${color}"`),
      );
    }
    y += LANE_H;
  }

  // Time axis.
  const span = (t1 - t0) / 1000;
  const step = niceStep(span, 12);
  for (let s = 0; s <= span + 1e-9; s += step) {
    const px = x(t0 + s * 1000);
    out.push(
      `<line x1="${f(px)}" x2="${f(px)}" y1="${f(y)}" y2="${f(y + 4)}" stroke="#999"/>`,
      text(px, y + 15, `${Number(s.toFixed(1))}`, 'font-size="10" text-anchor="middle" fill="#666"'),
    );
  }
  out.push(text(LEFT, y + 28, "seconds since the load started", 'font-size="10" fill="#666"'));
  // A note to the right of a panel narrower than the widest one.
  (panel.note ?? []).forEach((line, i) => {
    out.push(text(LEFT + plotW + 16, throughputTop + 12 + i * 14, line, 'font-size="11" fill="#333"'));
  });
  y += 36;
  return { svg: out.join("\n"), height: y - top, releases };
}

export function renderTimeline({ title, subtitle, panels }) {
  const parts = [];
  let y = 10;
  parts.push(text(LEFT, y + 16, title, 'font-size="16" font-weight="700"'));
  y += 24;
  if (subtitle) {
    parts.push(text(LEFT, y + 12, subtitle, 'font-size="11" fill="#555"'));
    y += 20;
  }
  // Legend.
  const legend = [
    ["rect", RELEASE_COLORS[0], "first release seen (2xx)"],
    ["rect", RELEASE_COLORS[1], "the other release (2xx)"],
    ["rect", FAILED, "failed (non-2xx, reset, timeout)"],
    ["line", P50, "p50 latency"],
    ["line", P99, "p99 latency"],
    ["tick", DRAIN, "drain"],
    ["tick", ENABLE, "enable"],
    ["rect", "#f4b9ae", "naive restart → healthy"],
  ];
  let lx = 20;
  for (const [kind, color, label] of legend) {
    if (lx + 16 + label.length * 5.3 > WIDTH - RIGHT) {
      lx = 20;
      y += 16;
    }
    if (kind === "rect") parts.push(`<rect x="${lx}" y="${y + 2}" width="12" height="10" fill="${color}"/>`);
    else if (kind === "line")
      parts.push(
        `<line x1="${lx}" x2="${lx + 12}" y1="${y + 7}" y2="${y + 7}" stroke="${color}" stroke-width="2"/>`,
      );
    else
      parts.push(
        `<line x1="${lx + 6}" x2="${lx + 6}" y1="${y + 1}" y2="${y + 13}" stroke="${color}" stroke-width="2"/>`,
      );
    parts.push(text(lx + 16, y + 11, label, 'font-size="10" fill="#333"'));
    lx += 22 + label.length * 5.3;
  }
  y += 24;
  const msPerPx = Math.max(...panels.map((p) => p.t1 - p.t0)) / PLOT_W;
  for (const panel of panels) {
    const rendered = renderPanel(panel, y, msPerPx);
    parts.push(rendered.svg);
    y += rendered.height + 8;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${Math.ceil(y)}" viewBox="0 0 ${WIDTH} ${Math.ceil(y)}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<title>Throughput and latency through Nginx during a rolling deploy, nexus vs a restart with no drain</title>
<rect width="100%" height="100%" fill="#ffffff"/>
${parts.join("\n")}
</svg>
`;
}
