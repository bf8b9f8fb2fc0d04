import { describe, expect, it } from "vitest";
import * as remote from "../../src/remote/commands.js";
import { isValidReleaseId, layout, resolveRemotePath } from "../../src/remote/layout.js";
import { parsePm2Restart, pm2Restart } from "../../src/remote/pm2-script.js";
import { cmd, shq } from "../../src/remote/quote.js";

describe("shell quoting", () => {
  it("single-quotes anything that is not plainly safe, escaping single quotes", () => {
    expect(shq("/srv/app/releases/20260101T000000Z-abc")).toBe("/srv/app/releases/20260101T000000Z-abc");
    expect(shq("x y")).toBe("'x y'");
    expect(shq("it's")).toBe("'it'\\''s'");
    expect(shq("$(id)")).toBe("'$(id)'");
    expect(shq("~/x")).toBe("'~/x'");
    expect(shq("")).toBe("''");
    expect(cmd("a b", "c")).toBe("'a b' c");
  });
});

describe("layout", () => {
  it("resolves ~/ against the remote home and keeps absolute paths", () => {
    expect(resolveRemotePath("~/apps/api", "/home/deploy")).toBe("/home/deploy/apps/api");
    expect(resolveRemotePath("/srv/api", "/home/deploy")).toBe("/srv/api");
    const l = layout("/srv/api");
    expect(l.release("r1")).toBe("/srv/api/releases/r1");
    expect(l.ecosystem("r1")).toBe("/srv/api/.nexus/pm2/r1.json");
  });
  it("accepts only safe release ids", () => {
    expect(isValidReleaseId("20261126T204501Z-1a2b3c4-dirty")).toBe(true);
    for (const bad of ["..", "a/b", "-x", "x y", "$(id)", ""]) expect(isValidReleaseId(bad)).toBe(false);
  });
});

describe("remote command builders", () => {
  const l = layout("/srv/my app");

  it("quote every path and value they interpolate", () => {
    expect(remote.activate(l, "r1")).toBe(
      "ln -sfn releases/r1 '/srv/my app/current.tmp-r1' && mv -Tf '/srv/my app/current.tmp-r1' '/srv/my app/current'",
    );
    expect(remote.lockAcquire(l, `{"user":"o'brien"}`)).toContain(`'{"user":"o'\\''brien"}'`);
    expect(remote.appendHistory(l, { note: "$(reboot)" })).toContain(`'{"note":"$(reboot)"}'`);
    expect(remote.extract(l, "/srv/my app/.nexus/incoming/r1.tar.gz", "r1", "ab12")).toContain(
      "tar -xzf '/srv/my app/.nexus/incoming/r1.tar.gz' -C '/srv/my app/releases/r1.partial'",
    );
  });

  it("install reuses node_modules only when both package files are unchanged", () => {
    const text = remote.install(l, "r2");
    expect(text).toContain("cmp -s package-lock.json '/srv/my app/current'/package-lock.json");
    expect(text).toContain("cp -al '/srv/my app/current'/node_modules node_modules");
    expect(text).toContain("npm ci --omit=dev");
  });

  it("the PM2 ecosystem file names the release directory and carries the env", () => {
    const file = JSON.parse(
      remote.ecosystemFile({
        name: "api",
        script: "server.js",
        cwd: "/srv/api/releases/r1",
        env: { A: "1" },
        killTimeout: 5000,
        outFile: "/o.log",
        errorFile: "/e.log",
      }),
    );
    expect(file.apps[0]).toMatchObject({
      name: "api",
      cwd: "/srv/api/releases/r1",
      env: { A: "1" },
      error_file: "/e.log",
    });
  });

  it("the PM2 restart program gets its arguments quoted and its result parsed", () => {
    expect(pm2Restart("my app", "/srv/x/.nexus/pm2/r1.json")).toMatch(
      /"\$pm2_dir" 'my app' \/srv\/x\/\.nexus\/pm2\/r1\.json$/,
    );
    expect(
      parsePm2Restart('[PM2] x\n{"before":null,"after":{"pid":3,"status":"online","restarts":0}}\n'),
    ).toEqual({
      before: null,
      after: { pid: 3, status: "online", restarts: 0 },
    });
  });

  it("counts connections by the remote address in /proc/net/tcp", () => {
    expect(remote.procNetTcpAddress("127.0.0.12:3000")).toBe("0C00007F:0BB8");
    expect(remote.procNetTcpAddress("10.1.2.3:80")).toBe("0302010A:0050");
    expect(remote.procNetTcpAddress("app.internal:3000")).toBeUndefined();
    expect(remote.procNetTcpAddress("300.1.1.1:80")).toBeUndefined();
    expect(remote.countConnections("127.0.0.12:3000")).toContain('$3 == "0C00007F:0BB8" && $4 == "01"');
  });

  it("confirms a reload through the master's workers, and fails on the reload's own error", () => {
    const text = remote.reloadAndConfirm("nginx -s reload", "/run/nginx.pid");
    expect(text).toContain("master=$(cat /run/nginx.pid");
    expect(text).toContain("{ nginx -s reload\n} || exit $?");
    expect(text).toContain("shutting down");
  });
});
