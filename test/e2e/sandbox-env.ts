import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { SandboxInfo } from "../../src/sandbox/layout.js";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/**
 * The e2e sandbox lives apart from the demo's (.sandbox, 127.0.0.x) so both can run at once.
 * NEXUS_TEST_SANDBOX_ID=N moves it to .sandbox-test-N on 127.0.(N+1).x, so that several
 * runs (say, two engineers' branches on one machine) do not collide.
 */
const id = process.env.NEXUS_TEST_SANDBOX_ID;
export const TEST_SANDBOX_DIR = path.join(PROJECT_ROOT, id ? `.sandbox-test-${id}` : ".sandbox-test");
export const TEST_IP_PREFIX = id ? `127.0.${Number(id) + 1}.` : "127.0.1.";

/** What `sandboxUp` wrote to sandbox.json. */
export type TestSandboxInfo = SandboxInfo;

export function sandboxInfo(): TestSandboxInfo {
  return JSON.parse(readFileSync(path.join(TEST_SANDBOX_DIR, "sandbox.json"), "utf8")) as TestSandboxInfo;
}

/**
 * The bastion tests' own sandbox (`sandbox up --bastion`), beside the shared one: its app hosts
 * answer only through its jump host. On 127.0.(N+129).x, so as not to meet the other's hosts.
 */
export const TEST_BASTION_DIR = `${TEST_SANDBOX_DIR}-bastion`;
export const TEST_BASTION_IP_PREFIX = `127.0.${(id ? Number(id) + 1 : 1) + 128}.`;

/** The fleet test's own, larger sandbox, on 127.0.(N+65).x. */
export const TEST_FLEET_DIR = `${TEST_SANDBOX_DIR}-fleet`;
export const TEST_FLEET_IP_PREFIX = `127.0.${(id ? Number(id) + 1 : 1) + 64}.`;

/**
 * The transfer and setup tests' own sandboxes (their addresses are theirs). Named, not temporary:
 * a run cut off before its afterAll leaves their processes holding the addresses, and the next
 * run's purge of the same name finds and stops them (a temporary name would be lost).
 */
export const TEST_TRANSFER_DIR = `${TEST_SANDBOX_DIR}-transfer`;
export const TEST_SETUP_DIR = `${TEST_SANDBOX_DIR}-setup`;
