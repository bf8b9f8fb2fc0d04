import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FETCH_EXIT, fetchCommand, fetchInput } from "../../src/transfer/fetch-command.js";
import { baseUrl, parseListen } from "../../src/transfer/http-server.js";
import { couldNotConnect, listenerKey, offerBase } from "../../src/transfer/transfer.js";

const SHA = "a".repeat(64);
const URL = "http://127.0.0.1:4321/0123/release.tar.gz";
const input = {
  dest: "/srv/app/.nexus/incoming/r1.tar.gz",
  sha256: SHA,
  timeoutSeconds: 600,
};

/**
 * A server's bin directory with only sh, `rm`, `mv`, `cut`, `sha256sum` and the fetchers asked for,
 * each a stand-in: it writes "artifact" to its output file (or fails with `fail`), and records its
 * arguments and its stdin.
 */
function fakeServer(fetchers: string[], options: { fail?: boolean } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-fetch-unit-"));
  const bin = path.join(dir, "bin");
  mkdirSync(bin);
  for (const tool of ["sh", "rm", "mv", "cut", "sha256sum", "cat"]) {
    symlinkSync(
      execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(),
      path.join(bin, tool),
    );
  }
  for (const fetcher of fetchers) {
    writeFileSync(
      path.join(bin, fetcher),
      `#!/bin/sh
[ "$1" = --version ] && exit 0
printf '%s\\n' "${fetcher}" "$@" > "${dir}/argv"
cat > "${dir}/stdin"
${options.fail ? "exit 3" : ""}
while [ $# -gt 0 ]; do case "$1" in -o|-O) printf artifact > "$2"; shift ;; esac; shift; done
`,
      { mode: 0o755 },
    );
  }
  const run = (command: string) =>
    spawnSync("/bin/sh", ["-c", command], {
      encoding: "utf8",
      env: { PATH: bin },
      input: fetchInput(URL),
    });
  const read = (name: string) => readFileSync(path.join(dir, name), "utf8");
  return { dir, run, read };
}

const ARTIFACT_SHA = createHash("sha256").update("artifact").digest("hex");

describe("fetchCommand", () => {
  it("tries curl, then wget, then node, whichever the server has", () => {
    expect(fetchCommand(input)).toMatch(/ 600 curl wget node$/);
    const server = fakeServer(["wget", "node"], { fail: true });
    const run = server.run(fetchCommand(input));
    expect(run.status).toBe(FETCH_EXIT.download);
    expect(run.stderr).toContain("download with wget failed (exit 3)");
    const none = fakeServer([]).run(fetchCommand(input));
    expect(none.status).toBe(FETCH_EXIT.noFetcher);
    expect(none.stderr).toContain("this server has none of curl, wget, node");
  });

  it("downloads to .part, checks the sha256, and renames only a matching file", () => {
    const good = fakeServer(["curl"]);
    const dest = path.join(good.dir, "r1.tar.gz");
    expect(good.run(fetchCommand({ ...input, dest, sha256: ARTIFACT_SHA })).status).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("artifact");
    expect(good.read("argv")).toContain(`${dest}.part`);

    const bad = fakeServer(["curl"]);
    const other = path.join(bad.dir, "r1.tar.gz");
    const run = bad.run(fetchCommand({ ...input, dest: other }));
    expect(run.status).toBe(FETCH_EXIT.checksum);
    expect(run.stderr).toContain(`checksum mismatch: expected ${SHA}, got ${ARTIFACT_SHA}`);
    expect(existsSync(other)).toBe(false);
    expect(existsSync(`${other}.part`)).toBe(false);
  });

  it("reads the URL from stdin: no fetcher gets it on its command line (ps shows command lines)", () => {
    expect(fetchCommand(input)).not.toContain("127.0.0.1:4321");
    for (const fetcher of ["curl", "wget"]) {
      const server = fakeServer([fetcher]);
      server.run(fetchCommand({ ...input, dest: path.join(server.dir, "a.tar.gz"), sha256: ARTIFACT_SHA }));
      expect(server.read("argv")).not.toContain(URL);
      expect(server.read("stdin")).toContain(URL);
    }
    expect(fetchInput(URL)).toBe(`${URL}\n`);
    // Quotes and backslashes cannot break out of curl's config syntax.
    expect(fetchInput('http://x/a"b\\c d')).toBe("http://x/a%22b%5Cc%20d\n");
  });

  it("quotes every value: a hostile path stays one literal word", () => {
    const server = fakeServer(["curl"]);
    mkdirSync(path.join(server.dir, "a b"));
    const dest = path.join(server.dir, "a b", "$(id).tar.gz");
    expect(server.run(fetchCommand({ ...input, dest, sha256: ARTIFACT_SHA })).status).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("artifact");
  });

  it("uses only the fetchers asked for", () => {
    expect(fetchCommand({ ...input, fetchers: ["node"] })).toMatch(/ 600 node$/);
    const run = fakeServer(["curl"]).run(fetchCommand({ ...input, fetchers: ["node"] }));
    expect(run.status).toBe(FETCH_EXIT.noFetcher);
  });

  it("refuses a checksum that is not a sha256", () => {
    expect(() => fetchCommand({ ...input, sha256: "abc; reboot" })).toThrow(/not a sha256/);
  });
});

describe("parseListen / baseUrl", () => {
  it("parses host:port and [v6]:port", () => {
    expect(parseListen("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListen("[::1]:8099")).toEqual({ host: "::1", port: 8099 });
    expect(parseListen("deploy-box.lan:80")).toEqual({ host: "deploy-box.lan", port: 80 });
  });

  it("refuses anything else", () => {
    for (const bad of ["127.0.0.1", ":80", "::1:80", "host:99999", "a b:1"]) {
      expect(() => parseListen(bad)).toThrow(/host:port/);
    }
  });

  it("brackets IPv6 addresses in URLs", () => {
    expect(baseUrl("::1", 8099)).toBe("http://[::1]:8099");
    expect(baseUrl("10.0.0.5", 80)).toBe("http://10.0.0.5:80");
  });
});

describe("the HTTP fallback's listener and URLs", () => {
  const wildcard = { host: "0.0.0.0", port: 8099 };
  const lan = { listen: wildcard, advertiseHost: "10.0.0.9" };
  const vpn = { listen: wildcard, advertiseHost: "192.168.1.9" };

  it("hosts reaching one wildcard listener on different addresses share it (a second would bind its port twice)", () => {
    expect(listenerKey("/tmp/a.tar.gz", lan)).toBe(listenerKey("/tmp/a.tar.gz", vpn));
    expect(listenerKey("/tmp/a.tar.gz", lan)).not.toBe(listenerKey("/tmp/b.tar.gz", lan));
    expect(listenerKey("/tmp/a.tar.gz", { listen: { host: "127.0.0.1", port: 0 } })).not.toBe(
      listenerKey("/tmp/a.tar.gz", { listen: { host: "127.0.0.2", port: 0 } }),
    );
  });

  it("each host gets the URL of the address it reaches nexus on, or transfer.url", () => {
    expect(offerBase(lan, undefined, 8099)).toBe("http://10.0.0.9:8099");
    expect(offerBase(vpn, undefined, 8099)).toBe("http://192.168.1.9:8099");
    expect(offerBase({ listen: { host: "127.0.0.1", port: 0 } }, undefined, 41234)).toBe(
      "http://127.0.0.1:41234",
    );
    expect(offerBase(lan, "https://deploy.example.com/nexus/", 8099)).toBe(
      "https://deploy.example.com/nexus",
    );
  });
});

describe("a failed HTTP fetch's advice", () => {
  it("says to make nexus reachable only when the server could not connect", () => {
    for (const detail of [
      "curl: (7) Failed to connect to 10.0.0.5 port 8099\nnexus: download with curl failed (exit 7)",
      "nexus: download with curl failed (exit 28)",
      "nexus: download with wget failed (exit 4)",
      "nexus: download with wget failed (exit 124)",
      "nexus: download with node failed: connect ECONNREFUSED 10.0.0.5:8099\nnexus: download with node failed (exit 75)",
    ])
      expect(couldNotConnect(detail), detail).toBe(true);
    for (const detail of [
      "curl: (23) Failure writing output to destination\nnexus: download with curl failed (exit 23)",
      "nexus: download with curl failed (exit 22)",
      "nexus: download with node failed: ENOSPC: no space left on device",
    ])
      expect(couldNotConnect(detail), detail).toBe(false);
  });
});
