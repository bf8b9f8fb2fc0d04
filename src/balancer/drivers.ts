import type { InteractiveRunner } from "../ssh/session.js";
import type { Balancer } from "./balancer.js";
import type { BalancerContext, BalancerDriver, BalancerEntry } from "./driver.js";
import { haproxyDriver } from "./haproxy/index.js";
import { MultiBalancer } from "./multi.js";
import { nginxDriver } from "./nginx/index.js";

/**
 * Every load balancer driver nexus knows, the default (`balancer.type` left out) first. The one
 * list the config schema, the factory, `check`, `setup`, the watch and the CLI's config commands
 * are made from: a new driver is its folder and a line here.
 */
export const BALANCER_DRIVERS = [nginxDriver, haproxyDriver] as const;

/** One `balancer` entry of the config, of whichever type. */
export type BalancerConfig = {
  [D in (typeof BALANCER_DRIVERS)[number] as D["type"]]: D extends BalancerDriver<infer Entry>
    ? Entry
    : never;
}[(typeof BALANCER_DRIVERS)[number]["type"]];

/** The driver of a config entry. */
export function driverFor(entry: BalancerEntry): BalancerDriver {
  const driver = BALANCER_DRIVERS.find((candidate) => candidate.type === entry.type);
  if (!driver) throw new Error(`no balancer driver for type "${entry.type}"`);
  // Each driver takes the entries of its own type, which its schema made.
  return driver as unknown as BalancerDriver;
}

export type { BalancerContext } from "./driver.js";

/** One balancer driver from its config entry. */
export function createBalancer(
  entry: BalancerConfig,
  runner: InteractiveRunner,
  context: BalancerContext,
): Promise<Balancer> {
  return driverFor(entry).create(entry, runner, context);
}

/** The fleet's balancer: the one driver, or all of them behind one interface. */
export function combineBalancers(balancers: readonly Balancer[]): Balancer {
  if (balancers.length === 1) return balancers[0] as Balancer;
  return new MultiBalancer(balancers);
}
