import { afterEach, describe, expect, it } from "vitest";
import { lockColumn } from "../../src/commands/status.js";
import { nexusCommand, rememberInvocation, renderInvocation } from "../../src/config/invocation.js";
import { STDIN_LABEL } from "../../src/config/load.js";

describe("the invocation a hint repeats", () => {
  it("is bare `nexus` for the default config, and before any config was read", () => {
    expect(renderInvocation({ file: "deploy.config.json" })).toBe("nexus");
    expect(renderInvocation(undefined)).toBe("nexus");
  });

  it("names another config file with -c, the destination with -d", () => {
    expect(renderInvocation({ file: "ops/deploy.json" })).toBe("nexus -c ops/deploy.json");
    expect(renderInvocation({ file: "deploy.config.json", destination: "staging" })).toBe("nexus -d staging");
    expect(renderInvocation({ file: "/etc/app/deploy.json", destination: "production" })).toBe(
      "nexus -c /etc/app/deploy.json -d production",
    );
  });

  it("says -c - for a config read from standard input (it must be piped in again)", () => {
    expect(renderInvocation({ file: STDIN_LABEL, destination: "staging" })).toBe("nexus -c - -d staging");
  });

  it("repeats --ssh-key and --known-hosts, which replace the config's values", () => {
    expect(
      renderInvocation({ file: "deploy.config.json", sshKey: "keys/ci", knownHosts: "ci_known_hosts" }),
    ).toBe("nexus --ssh-key keys/ci --known-hosts ci_known_hosts");
  });

  it("quotes what a shell would split or expand", () => {
    expect(renderInvocation({ file: "my configs/deploy.json", destination: "qa" })).toBe(
      "nexus -c 'my configs/deploy.json' -d qa",
    );
    expect(renderInvocation({ file: "it's $HOME.json" })).toBe(`nexus -c 'it'\\''s $HOME.json'`);
  });
});

describe("nexusCommand", () => {
  afterEach(() => rememberInvocation(undefined));

  it("puts the remembered invocation before the command, each word quoted", () => {
    expect(nexusCommand("trust", "web1")).toBe("nexus trust web1");
    rememberInvocation({ file: "ops/deploy.json", destination: "staging" });
    expect(nexusCommand("trust", "web 1", "--replace")).toBe(
      "nexus -c ops/deploy.json -d staging trust 'web 1' --replace",
    );
    expect(nexusCommand("recover")).toBe("nexus -c ops/deploy.json -d staging recover");
  });

  it("is what hints print: status's lock column names the destination's recover", () => {
    const journal = { command: "deploy", release: "r2", previous: "r1", pid: 1, host: "ci", time: "" };
    rememberInvocation({ file: "deploy.config.json", destination: "staging" });
    expect(lockColumn({ journal })).toBe("INTERRUPTED deploy of r2: run nexus -d staging recover");
  });
});
