import { describe, expect, it } from "vitest";
import { renderSudoers } from "../../src/sandbox/deploy-user.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import {
  buildInfo,
  knownHostsLine,
  renderNginxConf,
  renderNginxWrapper,
  renderSshClientConfig,
  renderSshdConfig,
  renderUpstreamConf,
  resolveOptions,
  type SandboxOptions,
} from "../../src/sandbox/layout.js";

function errorOf(opts: SandboxOptions): string {
  try {
    resolveOptions(opts);
  } catch (error) {
    expect(error).toBeInstanceOf(SandboxError);
    return (error as SandboxError).message;
  }
  throw new Error("expected a SandboxError");
}

describe("resolveOptions", () => {
  it("fills the defaults", () => {
    expect(resolveOptions({ dir: "/p/.sandbox/" })).toEqual({
      dir: "/p/.sandbox",
      ipPrefix: "127.0.0.",
      hosts: 3,
      sshPort: 2222,
      appPort: 3000,
      lbPort: 8080,
    });
  });

  it("rejects anything that is not a loopback prefix", () => {
    expect(errorOf({ dir: "/sb", ipPrefix: "10.0.0." })).toMatch(/loopback/);
    expect(errorOf({ dir: "/sb", ipPrefix: "127.0.1" })).toMatch(/127\.X\.Y\./);
    expect(errorOf({ dir: "/sb", ipPrefix: "127.0.256." })).toMatch(/127\.X\.Y\./);
  });

  it("rejects bad dirs, host counts and ports", () => {
    expect(errorOf({ dir: "relative/sb" })).toMatch(/absolute/);
    expect(errorOf({ dir: "/tmp/my sandbox" })).toMatch(/whitespace/);
    expect(errorOf({ dir: "/sb", hosts: 0 })).toMatch(/hosts/);
    expect(errorOf({ dir: "/sb", hosts: 51 })).toMatch(/between 1 and 50/);
    expect(errorOf({ dir: "/sb", lbPort: 70000 })).toMatch(/lbPort/);
    expect(errorOf({ dir: "/sb", sshPort: 3000 })).toMatch(/must differ/);
  });

  it("refuses dirs so deep that PM2's unix sockets would not fit", () => {
    expect(errorOf({ dir: `/tmp/${"d".repeat(80)}` })).toMatch(/too deep/);
  });
});

describe("buildInfo", () => {
  it("names up to 50 hosts: the Greek letters, then h13 to h50, on .11 to .60", () => {
    const info = buildInfo(resolveOptions({ dir: "/sb", ipPrefix: "127.0.50.", hosts: 50 }), "me");
    expect(info.hosts).toHaveLength(50);
    expect(info.hosts.map((h) => h.name).slice(10, 14)).toEqual([
      "nexus-lambda",
      "nexus-mu",
      "nexus-h13",
      "nexus-h14",
    ]);
    expect(info.hosts.at(-1)).toMatchObject({ name: "nexus-h50", address: "127.0.50.60" });
    expect(new Set(info.hosts.map((h) => h.name)).size).toBe(50);
  });

  it("lays hosts out from .11 with the load balancer on .10", () => {
    const info = buildInfo(
      resolveOptions({ dir: "/sb", ipPrefix: "127.0.1.", hosts: 4, lbPort: 8081 }),
      "me",
    );
    expect(info.hosts.map((h) => [h.name, h.address, h.appAddress, h.home])).toEqual([
      ["nexus-alpha", "127.0.1.11", "127.0.1.11:3000", "/sb/hosts/nexus-alpha/home"],
      ["nexus-beta", "127.0.1.12", "127.0.1.12:3000", "/sb/hosts/nexus-beta/home"],
      ["nexus-gamma", "127.0.1.13", "127.0.1.13:3000", "/sb/hosts/nexus-gamma/home"],
      ["nexus-delta", "127.0.1.14", "127.0.1.14:3000", "/sb/hosts/nexus-delta/home"],
    ]);
    expect(info.lb).toEqual({
      host: "nexus-alpha",
      url: "http://127.0.1.10:8081",
      upstreamFile: "/sb/hosts/nexus-alpha/nginx/upstream.conf",
      testCommand: "nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf -t",
      reloadCommand: "nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf -s reload",
      pidFile: "/sb/hosts/nexus-alpha/nginx/nginx.pid",
      accessLog: "/sb/hosts/nexus-alpha/nginx/access.log",
    });
    expect(info).toMatchObject({
      clientKey: "/sb/client/id_ed25519",
      knownHosts: "/sb/known_hosts",
      user: "me",
      login: "self",
    });
  });

  it("runs the deploy user's Nginx commands through sudo -n, with nginx's absolute path", () => {
    const info = buildInfo(resolveOptions({ dir: "/sb" }), "nexus-deploy", {
      login: "deploy-user",
      nginx: "/usr/sbin/nginx",
    });
    expect(info.lb.testCommand).toBe(
      "sudo -n /usr/sbin/nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf -t",
    );
    expect(info.lb.reloadCommand).toBe(
      "sudo -n /usr/sbin/nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf -s reload",
    );
    expect(info).toMatchObject({ user: "nexus-deploy", login: "deploy-user" });
  });

  it("rejects an unknown login mode", () => {
    expect(errorOf({ dir: "/sb", login: "admin" as never })).toMatch(/deploy-user/);
  });
});

describe("nginx wrapper", () => {
  it("calls the sandbox's Nginx with the exact arguments the sudoers rule lists", () => {
    const argv = ["/usr/sbin/nginx", "-p", "/sb/hosts/nexus-alpha/nginx/", "-c", "nginx.conf"];
    expect(renderNginxWrapper(argv, true)).toContain(
      'exec sudo -n /usr/sbin/nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf "$@"',
    );
    expect(renderNginxWrapper(argv, false)).toContain(
      'exec /usr/sbin/nginx -p /sb/hosts/nexus-alpha/nginx/ -c nginx.conf "$@"',
    );
  });
});

describe("sudoers rule", () => {
  it("allows exactly the test and reload commands, escaping sudoers syntax in arguments", () => {
    const rule = renderSudoers("nexus-deploy", [
      ["/usr/sbin/nginx", "-p", "/a,b:c=d/", "-t"],
      ["/usr/sbin/nginx", "-s", "reload"],
    ]);
    expect(rule).toContain(
      "nexus-deploy ALL=(root) NOPASSWD: /usr/sbin/nginx -p /a\\,b\\:c\\=d/ -t, \\\n    /usr/sbin/nginx -s reload\n",
    );
  });
});

describe("renderers", () => {
  const info = buildInfo(resolveOptions({ dir: "/sb", ipPrefix: "127.0.1." }), "root");
  const alpha = info.hosts[0];
  if (!alpha) throw new Error("no hosts");

  it("renders the upstream exactly as nexus expects to edit it", () => {
    expect(renderUpstreamConf(info.hosts.map((h) => h.appAddress))).toBe(
      `# Managed by the nexus sandbox, included inside upstream nexus_app { } of nginx.conf.
server 127.0.1.11:3000 max_fails=3 fail_timeout=30s;
server 127.0.1.12:3000 max_fails=3 fail_timeout=30s;
server 127.0.1.13:3000 max_fails=3 fail_timeout=30s;
`,
    );
  });

  it("gives each sshd its own address, key, pid file and session environment", () => {
    const conf = renderSshdConfig({
      host: alpha,
      dir: "/sb",
      path: "/p/node_modules/.bin:/usr/bin",
      user: "root",
    });
    const lines = conf.split("\n");
    expect(lines).toContain("Port 2222");
    expect(lines).toContain("ListenAddress 127.0.1.11");
    expect(lines).toContain("HostKey /sb/hosts/nexus-alpha/ssh_host_ed25519_key");
    expect(lines).toContain("PidFile /sb/hosts/nexus-alpha/sshd.pid");
    expect(lines).toContain("AuthorizedKeysFile /sb/client/authorized_keys");
    expect(lines).toContain("PasswordAuthentication no");
    expect(lines).toContain("Subsystem sftp internal-sftp -d /sb/hosts/nexus-alpha/home");
    const setEnv = lines.find((l) => l.startsWith("SetEnv "))?.split(" ");
    expect(setEnv).toEqual(
      expect.arrayContaining([
        "HOME=/sb/hosts/nexus-alpha/home",
        "PM2_HOME=/sb/hosts/nexus-alpha/home/.pm2",
        "PATH=/p/node_modules/.bin:/usr/bin",
        "NEXUS_SANDBOX_HOST=nexus-alpha",
      ]),
    );
  });

  it("writes known_hosts lines with the port in brackets unless it is 22", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFiCL3jt94lpzyVqQE2XTSaaQxftR4g nexus-sandbox-alpha\n";
    expect(knownHostsLine("127.0.1.11", 2222, key)).toBe(
      "[127.0.1.11]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFiCL3jt94lpzyVqQE2XTSaaQxftR4g",
    );
    expect(knownHostsLine("127.0.1.11", 22, key)).toMatch(/^127\.0\.1\.11 ssh-ed25519 /);
    expect(() => knownHostsLine("127.0.1.11", 22, "garbage")).toThrow(SandboxError);
  });

  it("writes an ssh client config entry per host", () => {
    const conf = renderSshClientConfig(info);
    expect(conf).toContain("Host nexus-gamma 127.0.1.13\n  HostName 127.0.1.13\n  Port 2222\n  User root\n");
    expect(conf).toContain("UserKnownHostsFile /sb/known_hosts");
  });

  it("keeps every nginx path relative to the -p prefix", () => {
    const conf = renderNginxConf({ listen: "127.0.1.10:8080", userRoot: false, stubStatus: true });
    expect(conf).toContain("listen 127.0.1.10:8080;");
    expect(conf).toContain("include upstream.conf;");
    expect(conf).toContain("proxy_pass http://nexus_app;");
    expect(conf).toContain("location = /nginx-status {");
    expect(conf).not.toContain("user root;");
    // Only absolute paths in the file would be the ones nginx must not use.
    expect(conf).not.toMatch(/^\s*(pid|error_log|access_log|\w+_temp_path)\s+\//m);
    const rootConf = renderNginxConf({ listen: "127.0.1.10:8080", userRoot: true, stubStatus: false });
    expect(rootConf).toMatch(/^user root;$/m);
    expect(rootConf).not.toContain("stub_status");
  });
});
