import { drainStrategy } from "./drain/index.js";
import type { RolloutStrategyDriver } from "./strategy.js";
import { surgeStrategy } from "./surge/index.js";

/** Every rollout strategy nexus knows, the default (`rolling.strategy` left out) first. */
export const ROLLOUT_STRATEGIES = [drainStrategy, surgeStrategy] as const;

export type RolloutStrategyName = (typeof ROLLOUT_STRATEGIES)[number]["name"];

/** The strategy a config names (the schema allows only the names above). */
export function strategyNamed(name: string): RolloutStrategyDriver {
  const strategy = ROLLOUT_STRATEGIES.find((candidate) => candidate.name === name);
  if (!strategy) throw new Error(`no rollout strategy "${name}"`);
  return strategy;
}
