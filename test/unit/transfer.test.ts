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

describe("fetchCommand", () => {
  it("tries curl, then wget, then node, whichever the server has", () => {
    const command = fetchCommand(input);
    const curl = command.indexOf("if command -v curl");
    const wget = command.indexOf("elif command -v wget");
    const node = command.indexOf("elif command -v node");
    expect(curl).toBeGreaterThanOrEqual(0);
    expect(wget).toBeGreaterThan(curl);
    expect(node).toBeGreaterThan(wget);
    expect(command).toContain(
      `printf 'url = "%s"\\n' "$url" | curl -fsS --connect-timeout 15 --max-time 600 -o "$part" -K -`,
    );
    expect(command).toContain(`exit ${FETCH_EXIT.noFetcher}`);
  });

  it("downloads to .part, checks the sha256, and renames only a matching file", () => {
    const command = fetchCommand(input);
    expect(command).toContain("part=/srv/app/.nexus/incoming/r1.tar.gz.part");
    const check = command.indexOf(`if [ "$actual" != ${SHA} ]`);
    const rename = command.indexOf('mv -f "$part" "$dest"');
    expect(check).toBeGreaterThan(0);
    expect(rename).toBeGreaterThan(check);
    expect(command).toContain(
      `rm -f "$part"; echo "checksum mismatch: expected ${SHA}, got $actual" >&2; exit 65`,
    );
  });

  it("reads the URL from stdin: no fetcher gets it on its command line (ps shows command lines)", () => {
    const command = fetchCommand(input);
    expect(command.split("\n")[0]).toBe('IFS= read -r url || [ -n "$url" ]');
    // "$url" appears only as an argument of the shell's builtin printf, piped into the fetcher.
    const uses = command.split("\n").filter((line) => line.includes('"$url"') && !/^(case|IFS=) /.test(line));
    expect(uses).toHaveLength(3);
    for (const line of uses) expect(line).toMatch(/printf '[^']*' "\$url" \| (\$limit )?(curl|wget|node) /);
    expect(command).toContain('wget -q -T 30 -O "$part" -i -');
    expect(fetchInput(URL)).toBe(`${URL}\n`);
    // Quotes and backslashes cannot break out of curl's config syntax.
    expect(fetchInput('http://x/a"b\\c d')).toBe("http://x/a%22b%5Cc%20d\n");
  });

  it("quotes every value: a hostile path stays one literal word", () => {
    const command = fetchCommand({ ...input, dest: "/tmp/a b/$(id).tar.gz" });
    expect(command).toContain(`dest='/tmp/a b/$(id).tar.gz'`);
    expect(command).toContain(`part='/tmp/a b/$(id).tar.gz.part'`);
  });

  it("uses only the fetchers asked for", () => {
    const command = fetchCommand({ ...input, fetchers: ["node"] });
    expect(command).not.toContain("curl");
    expect(command).not.toContain("command -v wget");
    expect(command).toContain("if command -v node");
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
