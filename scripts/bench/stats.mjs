// Small statistics and formatting helpers for the benchmark.

/** Median of the finite values (mean of the middle two for an even count); NaN if none. */
export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function min(values) {
  const v = values.filter(Number.isFinite);
  return v.length ? Math.min(...v) : Number.NaN;
}

export function max(values) {
  const v = values.filter(Number.isFinite);
  return v.length ? Math.max(...v) : Number.NaN;
}

export function sum(values) {
  return values.filter(Number.isFinite).reduce((a, b) => a + b, 0);
}

/** Seconds with 2 decimals ("6.42 s"), or "–". */
export function secs(value, digits = 2) {
  return Number.isFinite(value) ? `${value.toFixed(digits)} s` : "–";
}

/** Milliseconds as an integer ("342 ms"), or "–". */
export function ms(value) {
  if (!Number.isFinite(value)) return "–";
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

export function ratio(value) {
  if (value === Number.POSITIVE_INFINITY) return "∞";
  return Number.isFinite(value) ? `${value.toFixed(value >= 10 ? 0 : 1)}×` : "–";
}

/** "median (min–max)" of seconds. */
export function spread(values, digits = 2) {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return "–";
  if (v.length === 1) return secs(v[0], digits);
  return `${secs(median(v), digits)} (${min(v).toFixed(digits)}–${max(v).toFixed(digits)})`;
}

/** A markdown table; also readable as plain text. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}
