import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import { jsonLineSchema } from "../../src/events/schema.js";

const envelope = { v: 1, time: "2026-11-29T08:00:00.000Z", type: "result" } as const;

describe("--json result lines", () => {
  it("the schema accepts each command's structured answer", () => {
    const lines = [
      {
        ...envelope,
        command: "status",
        rows: [
          {
            server: "web1",
            rotation: "in rotation",
            port: "3000",
            health: "ok",
            release: "r1",
            process: "online",
            instances: "1/1 online",
            lock: "",
          },
        ],
      },
      {
        ...envelope,
        command: "releases",
        rows: [{ server: "web1", id: "r1", mark: "current", time: "", user: "ci", commit: "abc1234" }],
      },
      { ...envelope, command: "init", file: "/app/deploy.config.json", servers: ["web1"] },
      {
        ...envelope,
        command: "nginx-config",
        upstream: "app",
        servers: ["10.0.0.1:3000"],
        upstreamFile: "/etc/nginx/nexus/app-servers.conf",
        serversFile: "server 10.0.0.1:3000;\n",
        upstreamBlock: "upstream app {}\n",
        serverSettings: "client_header_timeout 10s;\n",
        upgradeMap: "map $http_upgrade $nexus_connection_upgrade {}\n",
        location: "location / {}\n",
        logFormat: "log_format nexus ...;\n",
      },
      {
        ...envelope,
        command: "pack",
        root: "/app",
        files: [{ path: "server.js", size: 10 }],
        count: 1,
        bytes: 10,
        warnings: [],
        leftOut: [{ path: "deploy/staging.json", size: 571 }],
      },
      {
        ...envelope,
        command: "trust",
        server: "web1",
        host: "[10.0.0.1]:2222",
        keyType: "ssh-ed25519",
        fingerprint: "SHA256:abc",
        trusted: "added",
        knownHosts: "/home/u/.ssh/known_hosts",
      },
      { ...envelope, command: "sandbox", action: "status", up: false, processes: [] },
      {
        ...envelope,
        command: "plan",
        release: "r2",
        batches: [["web1"], ["web2"]],
        files: 3,
        bytes: 99,
        start: "server.js",
      },
      {
        ...envelope,
        command: "exec",
        servers: [
          { server: "web1", exitCode: 0, lines: [{ stream: "out", line: "v20.11.0" }] },
          { server: "web2", exitCode: null, error: "no current release (deploy first)", lines: [] },
        ],
      },
      { ...envelope, command: "config", config: { app: { name: "api" } } },
    ];
    for (const line of lines) expect(jsonLineSchema.safeParse(line).success, line.command).toBe(true);
  });

  it("the schema refuses a row in a JSON string or an unknown command", () => {
    expect(
      jsonLineSchema.safeParse({ ...envelope, command: "status", rows: ['{"server":"web1"}'] }).success,
    ).toBe(false);
    expect(jsonLineSchema.safeParse({ ...envelope, command: "nope" }).success).toBe(false);
  });

  it("every subcommand's help shows the global flags", () => {
    const program = buildProgram(() => {});
    for (const name of ["deploy", "status", "pack", "releases", "init", "nginx-config"]) {
      const command = program.commands.find((c) => c.name() === name);
      expect(command, name).toBeDefined();
      const help = command?.helpInformation() ?? "";
      expect(help, name).toContain("--json");
      expect(help, name).toContain("--ssh-key <path>");
    }
  });
});
