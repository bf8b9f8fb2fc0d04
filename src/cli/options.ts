import { InvalidArgumentError } from "commander";
import { parseDuration } from "../config/duration.js";
import type { Config } from "../config/load.js";
import { UsageError } from "../errors.js";
import { ROLLOUT_STRATEGIES, type RolloutStrategyName } from "../rollout/strategies.js";

/** `--only a,b`: a comma-separated list of names. */
export function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `--lock-wait 30s`: a duration, in milliseconds. */
export function durationOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as "30s" or "2m".');
  return ms;
}

/** `-n 50`: a number of lines. */
export function lineCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a number of lines.");
  return Number(value);
}

/** "Examples:" (or "Example:") and one indented line each: the end of every command's help. */
export function examples(...lines: string[]): string {
  return `\n${lines.length === 1 ? "Example" : "Examples"}:\n${lines.map((line) => `  ${line}`).join("\n")}`;
}

/** `--strategy surge`: a rollout strategy's name (rolling.strategy for this command). */
export function strategyOption(value: string): RolloutStrategyName {
  const names = ROLLOUT_STRATEGIES.map((strategy) => strategy.name);
  const found = names.find((name) => name === value);
  if (!found) throw new InvalidArgumentError(`expected one of ${names.join(", ")}.`);
  return found;
}

export const STRATEGY_HELP = `how each batch moves (${ROLLOUT_STRATEGIES.map((s) => s.name).join(" or ")}; default: rolling.strategy)`;

/** The config with --strategy in place of rolling.strategy, checked as the config file's would be. */
export function withStrategy(config: Config, strategy: RolloutStrategyName | undefined): Config {
  if (!strategy) return config;
  if (strategy === "surge" && config.health.port !== config.app.port)
    throw new UsageError(
      "--strategy surge: the surge strategy probes each process on its own port (app.port or app.surgePort); leave health.port out of the config",
    );
  return { ...config, rolling: { ...config.rolling, strategy } };
}
