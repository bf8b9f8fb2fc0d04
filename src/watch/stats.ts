/**
 * The few statistics the watch's judge needs, pure and dependency-free: one-sided tests on counts
 * (Fisher's exact test, an exact binomial tail) and on samples (Mann-Whitney U), and quantiles.
 * Every p-value is one-sided: "is the watched server worse?", never "is it different?".
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7: ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0] as number;
  for (let i = 1; i < LANCZOS.length; i++) sum += (LANCZOS[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return Number.NEGATIVE_INFINITY;
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Sums exp(terms) from the largest down, stopping once the rest cannot matter. */
function sumOfExps(logTerms: (k: number) => number, from: number, to: number): number {
  let total = 0;
  for (let k = from; k <= to; k++) {
    const term = Math.exp(logTerms(k));
    total += term;
    // The tails summed here fall off geometrically past the mode: stop when a term is negligible.
    if (term < total * 1e-17 && k > from + 1) break;
  }
  return Math.min(1, total);
}

/**
 * Fisher's exact test, one-sided: the probability, with the failures of both groups pooled and
 * the group sizes fixed, that group A gets at least `failuresA` of them (hypergeometric upper
 * tail). Small: A fails more than chance explains.
 */
export function fisherGreater(
  failuresA: number,
  requestsA: number,
  failuresB: number,
  requestsB: number,
): number {
  const total = requestsA + requestsB;
  const failed = failuresA + failuresB;
  if (requestsA === 0 || failed === 0) return 1;
  const norm = logChoose(total, requestsA);
  const upper = Math.min(failed, requestsA);
  // The mode of the hypergeometric; below it the tail holds at least half the mass: sum upwards anyway.
  return sumOfExps(
    (k) => logChoose(failed, k) + logChoose(total - failed, requestsA - k) - norm,
    Math.max(failuresA, failed - requestsB, 0),
    upper,
  );
}

/** P(X ≥ k) for X ~ Binomial(n, p): one-sided test of "more than p fail". */
export function binomialGreater(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  return sumOfExps((i) => logChoose(n, i) + i * lp + (n - i) * lq, k, n);
}

/**
 * erfc(x) (Numerical Recipes' Chebyshev fit): relative error below 1.2e-7 everywhere, so small
 * tail probabilities keep their digits.
 */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(Z ≥ z) for a standard normal Z. */
export function normalUpper(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

export interface RankTest {
  /** One-sided p-value of "A's values tend to be larger than B's". */
  p: number;
  /** P(a > b) + P(a = b)/2 for a random pair: 0.5 when neither is larger (the common-language effect size). */
  probabilityGreater: number;
}

/**
 * The Mann-Whitney U test, one-sided (A larger than B), by the normal approximation with the
 * tie correction (latencies in whole milliseconds tie a lot) and a continuity correction. Sound
 * from ~20 values per group; the judge asks for more (minRequests) before it judges.
 */
export function mannWhitneyGreater(a: readonly number[], b: readonly number[]): RankTest {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { p: 1, probabilityGreater: 0.5 };
  const all: [number, 0 | 1][] = [];
  for (const value of a) all.push([value, 0]);
  for (const value of b) all.push([value, 1]);
  all.sort((x, y) => x[0] - y[0]);
  const n = all.length;
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && (all[j + 1] as [number, number])[0] === (all[i] as [number, number])[0]) j++;
    const rank = (i + j + 2) / 2; // ranks are 1-based: i+1 .. j+1, averaged
    const ties = j - i + 1;
    if (ties > 1) tieTerm += ties ** 3 - ties;
    for (let k = i; k <= j; k++) if ((all[k] as [number, number])[1] === 0) rankSumA += rank;
    i = j + 1;
  }
  const u = rankSumA - (n1 * (n1 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  const probabilityGreater = u / (n1 * n2);
  if (variance <= 0) return { p: 1, probabilityGreater };
  const z = (u - mean - 0.5) / Math.sqrt(variance);
  return { p: normalUpper(z), probabilityGreater };
}

/** The q-quantile (0..1) of ascending values, by nearest rank; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** How many of the ascending `sorted` values are strictly above `threshold`. */
export function countAbove(sorted: readonly number[], threshold: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= threshold) lo = mid + 1;
    else hi = mid;
  }
  return sorted.length - lo;
}
