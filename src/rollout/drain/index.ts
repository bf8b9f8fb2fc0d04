import type { RolloutStrategyDriver } from "../strategy.js";
import { DrainStrategy } from "./drain.js";

/** Out of rotation, restarted, gated, back in: capacity drops by a batch meanwhile. The default. */
export const drainStrategy: RolloutStrategyDriver & { readonly name: "drain" } = {
  name: "drain",
  create: (options, ledger) => new DrainStrategy(options, ledger),
  prepareAhead: (ops, _config, server, release) => ops.prepare?.(server, release),
};
