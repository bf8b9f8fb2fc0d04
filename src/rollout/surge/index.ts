import { nextPort } from "../../remote/live-port.js";
import type { RolloutStrategyDriver } from "../strategy.js";
import { SurgeStrategy } from "./surge.js";

/** The release started beside the old one on the other port, gated, switched to: capacity never drops. */
export const surgeStrategy: RolloutStrategyDriver & { readonly name: "surge" } = {
  name: "surge",
  create: (options, ledger) => new SurgeStrategy(options, ledger),
  // On the port the server's record leaves free: the one `begin` readies it on, unless the
  // balancer says otherwise (a command stopped between the switch and the record).
  prepareAhead: (ops, config, server, release, livePort) =>
    ops.surge?.prepare?.(server, release, nextPort(livePort, config.app)),
};
