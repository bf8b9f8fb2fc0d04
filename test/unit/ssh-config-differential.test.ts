import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { formatProxyJump, parseProxyJump } from "../../src/ssh/proxy-jump.js";
import { resolveSshConfigHost } from "../../src/ssh/ssh-config.js";

/**
 * nexus's reading of an OpenSSH client config against OpenSSH's own: `ssh -G -F FILE HOST` prints
 * the configuration ssh would use for HOST (no connection made). HostName, User, Port,
 * IdentityFile and ProxyJump must agree for every host of every config in the corpus.
 *
 * Left out, on purpose: `Match exec` (ssh runs the command; nexus never does) and relative Include
 * paths (ssh takes them from the passwd entry's ~/.ssh, which a test cannot move).
 */

const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-ssh-g-"));
mkdirSync(path.join(dir, "conf.d"));
writeFileSync(
  path.join(dir, "conf.d", "10-orbstack.conf"),
  "Host orb\n  HostName 127.0.0.1\n  Port 32222\n  User default\n",
);
writeFileSync(
  path.join(dir, "conf.d", "20-colima.conf"),
  "Host colima\n  HostName 127.0.0.1\n  Port 50221\n  IdentityFile /keys/colima\n",
);
writeFileSync(path.join(dir, "conf.d", "README"), "Host readme\n  HostName not-included.example\n");
writeFileSync(path.join(dir, "nested.conf"), `Include ${dir}/conf.d/*.conf\nHost nested\n  User nest\n`);
writeFileSync(path.join(dir, "in-block.conf"), "Host in-block-target\n  HostName reached.example\n");

const CORPUS: { name: string; text: string; hosts: string[] }[] = [
  {
    name: "patterns, negations, first value wins, tokens",
    text: `Host web-* !web-legacy
  HostName %h.internal.example.com
  User deployer
  Port 2200
  IdentityFile /keys/%r_%h
Host web-legacy
  HostName legacy.example.com
Host *.example.com db?
  Port 2201
Host *
  User fallback
  IdentityFile /keys/all
`,
    hosts: ["web-a", "web-legacy", "db1", "x.example.com", "other", "WEB-B", "Web-c"],
  },
  {
    name: "ProxyJump chains, URIs and none",
    text: `Host app1
  ProxyJump ops@bastion.example.com:2222,inner
Host app2
  ProxyJump ssh://jump@10.9.9.9:22
Host app3
  ProxyJump none
Host app*
  ProxyJump default-jump
`,
    hosts: ["app1", "app2", "app3", "app4", "unrelated"],
  },
  {
    name: "Include with globs, absolute and nested, before and inside blocks",
    text: `Include ${dir}/conf.d/*.conf ${dir}/missing-*.conf
Host inc
  Include ${dir}/nested.conf
  User inc-user
Host gate
  Include ${dir}/in-block.conf
Host *
  Port 2000
`,
    hosts: ["orb", "colima", "readme", "nested", "inc", "in-block-target", "gate"],
  },
  {
    name: "Match host, originalhost, user, all",
    text: `Match host *.corp
  User corp
Match originalhost short
  HostName short.corp
Match user admin host adm*
  Port 2022
Host adm1
  User admin
Match all
  IdentityFile /keys/default
`,
    hosts: ["a.corp", "short", "adm1", "adm2", "none"],
  },
  {
    name: "case, = separators, quotes",
    text: `HOST Mixed
  hostname=Mixed.Example
  USER "quoted user"
  Port=2345
  identityfile "/keys/with space"
`,
    hosts: ["mixed", "Mixed", "MIXED"],
  },
];

/** ssh's default identity files (it prints them when none is set): none, for nexus. */
const DEFAULT_IDENTITIES = /^~\/\.ssh\/id_(rsa|ecdsa|ecdsa_sk|ed25519|ed25519_sk|xmss|dsa)$/;

function sshG(file: string, host: string): Map<string, string[]> {
  const result = spawnSync("ssh", ["-G", "-F", file, host], { encoding: "utf8" });
  if (result.error) throw new Error("ssh (openssh-client) is not installed");
  if (result.status !== 0) throw new Error(`ssh -G ${host} failed: ${result.stderr}`);
  const values = new Map<string, string[]>();
  for (const line of result.stdout.split("\n")) {
    const space = line.indexOf(" ");
    if (space < 0) continue;
    const key = line.slice(0, space);
    values.set(key, [...(values.get(key) ?? []), line.slice(space + 1)]);
  }
  return values;
}

/** One spelling of a chain (ssh -G brackets some hosts): none is no jump. */
function normalizeJump(value: string | undefined): string | undefined {
  return value === undefined || value === "none" ? undefined : formatProxyJump(parseProxyJump(value));
}

const local = os.userInfo().username;
const home = os.homedir();
const context = { home, localUser: local };

describe("the ssh config, read by nexus and by OpenSSH's ssh -G", () => {
  for (const config of CORPUS) {
    it(config.name, () => {
      const file = path.join(dir, `${config.name.replace(/\W+/g, "-")}.conf`);
      writeFileSync(file, config.text);
      for (const host of config.hosts) {
        const ssh = sshG(file, host);
        const ours = resolveSshConfigHost(config.text, host, context);
        const first = (key: string) => ssh.get(key)?.[0];
        const expected = {
          host,
          hostName: first("hostname"),
          user: first("user"),
          port: Number(first("port")),
          // ssh prints them as written: their tokens expanded here as ssh expands them.
          identityFiles: (ssh.get("identityfile") ?? [])
            .filter((f) => !DEFAULT_IDENTITIES.test(f))
            .map((f) =>
              f.replace(/^~(?=\/)/, home).replace(/%([%dhnpru])/g, (_m, t: string) =>
                t === "%"
                  ? "%"
                  : ({
                      d: home,
                      h: first("hostname") ?? "",
                      n: host,
                      p: first("port") ?? "",
                      r: first("user") ?? "",
                      u: local,
                    }[t] ?? ""),
              ),
            ),
          proxyJump: normalizeJump(first("proxyjump")),
        };
        const actual = {
          host,
          hostName: ours.hostName ?? host.toLowerCase(),
          user: ours.user ?? local,
          port: ours.port ?? 22,
          identityFiles: ours.identityFiles,
          proxyJump: normalizeJump(ours.proxyJump),
        };
        expect(actual).toEqual(expected);
      }
    });
  }
});
