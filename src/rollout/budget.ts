/**
 * The failure budget (`rolling.maxFailed`): how many servers of a roll may fail (their gate, or
 * unreachable under --skip-unreachable) while the roll goes on, Ansible's `max_fail_percentage`
 * as a count or a percentage. Pure.
 */

/** The servers a roll may lose: a count, or a percentage of the fleet rounded down; undefined: no budget. */
export function failureBudget(maxFailed: number | string | undefined, fleetSize: number): number | undefined {
  if (maxFailed === undefined) return undefined;
  if (typeof maxFailed === "number") return maxFailed;
  const percent = Number(maxFailed.replace(/%$/, ""));
  return Math.floor((percent * fleetSize) / 100);
}

/** The budget as people read it: "1 of 1 spent" (and the config's percentage). */
export function describeBudget(maxFailed: number | string, budget: number, spent: number): string {
  const of = typeof maxFailed === "string" ? `${budget} (${maxFailed} of the fleet)` : `${budget}`;
  return `${spent} of ${of} spent`;
}

/** Whether `more` failures fit in what is left of the budget. */
export function withinBudget(budget: number | undefined, spent: number, more: number): boolean {
  return budget !== undefined && spent + more <= budget;
}

/**
 * Why a roll cannot start: more servers unreachable (--skip-unreachable) than the budget allows.
 * `fleetSize` counts them too.
 */
export function unreachableOverBudget(
  maxFailed: number | string | undefined,
  fleetSize: number,
  unreachable: readonly string[],
): string | undefined {
  const budget = failureBudget(maxFailed, fleetSize);
  if (budget === undefined || maxFailed === undefined || unreachable.length <= budget) return undefined;
  return `failure budget (rolling.maxFailed) exceeded before the roll: ${unreachable.length} server(s) unreachable (${unreachable.join(", ")}), ${describeBudget(maxFailed, budget, unreachable.length)}`;
}
