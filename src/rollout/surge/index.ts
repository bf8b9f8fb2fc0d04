import type { RolloutStrategyDriver } from "../strategy.js";
import { SurgeStrategy } from "./surge.js";

/** The release started beside the old one on the other port, gated, switched to: capacity never drops. */
export const surgeStrategy: RolloutStrategyDriver & { readonly name: "surge" } = {
  name: "surge",
  create: (options, ledger) => new SurgeStrategy(options, ledger),
};
