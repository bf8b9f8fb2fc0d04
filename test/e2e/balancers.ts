/** Deploy configs for the test sandbox's other balancers: its HAProxy, and Nginx + HAProxy as a pair. */
import { sandboxDeployConfig } from "../../src/sandbox/deploy-config.js";
import { haproxyBalancerEntry, type SandboxHaproxy } from "../../src/sandbox/haproxy.js";
import { APP_NAME, fixture, writeConfig } from "./helpers.js";
import { sandboxInfo } from "./sandbox-env.js";

export function sandboxHaproxy(): SandboxHaproxy {
  const haproxy = sandboxInfo().haproxy;
  if (!haproxy)
    throw new Error("the test sandbox runs no HAProxy (global-setup starts it with balancer: haproxy)");
  return haproxy;
}

function nginxEntry(): Record<string, unknown> {
  const base = sandboxDeployConfig(sandboxInfo(), { appRoot: fixture("app"), appName: APP_NAME });
  return { ...(base.balancer as Record<string, unknown>), drainTimeout: "5s" };
}

function haproxyEntry(drainTimeout = "5s"): Record<string, unknown> {
  return { ...haproxyBalancerEntry(sandboxHaproxy()), drainTimeout };
}

/** The sandbox through its HAProxy only; a test that holds a drain open gives a long drainTimeout. */
export function writeHaproxyConfig(overrides: Record<string, unknown> = {}, drainTimeout?: string): string {
  // A list of one: writeConfig merges objects into its Nginx balancer, and replaces lists.
  return writeConfig({ ...overrides, balancer: [haproxyEntry(drainTimeout)] });
}

/** Both load balancers of the sandbox in front of the same servers, like an HA pair. */
export function writePairConfig(overrides: Record<string, unknown> = {}): string {
  return writeConfig({ ...overrides, balancer: [nginxEntry(), haproxyEntry()] });
}
