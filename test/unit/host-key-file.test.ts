import { describe, expect, it } from "vitest";
import { hostKeyFile } from "../../src/setup/run.js";

describe("the host key file setup and trust tell you to compare", () => {
  it("is the one file of the offered key's type (ssh-keygen -lf takes one file: a glob over three fails)", () => {
    expect(hostKeyFile("ssh-ed25519")).toBe("/etc/ssh/ssh_host_ed25519_key.pub");
    expect(hostKeyFile("ecdsa-sha2-nistp256")).toBe("/etc/ssh/ssh_host_ecdsa_key.pub");
    expect(hostKeyFile("ssh-rsa")).toBe("/etc/ssh/ssh_host_rsa_key.pub");
    expect(hostKeyFile("ssh-dss")).toBe("/etc/ssh/ssh_host_dsa_key.pub");
  });
});
