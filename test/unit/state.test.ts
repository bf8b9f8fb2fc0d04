import { describe, expect, it } from "vitest";
import { previousRelease, releasesToPrune } from "../../src/deploy/state.js";
import { parseJlist } from "../../src/process/pm2/jlist.js";
import { processProblem } from "../../src/process/process-manager.js";
import { parseHistory, parseInspect } from "../../src/remote/server-state.js";

describe("server state", () => {
  const out = [
    "@current releases/20260102T000000Z-b",
    "@release 20260101T000000Z-a ok",
    "@release 20260103T000000Z-c failed",
    "@release 20260102T000000Z-b ok",
    '@lock {"user":"ana","pid":4}',
    '@journal {"command":"deploy","release":"20260103T000000Z-c","previous":"20260102T000000Z-b","pid":9,"host":"h","time":"t"}',
  ].join("\n");

  it("parses the inspect output", () => {
    const state = parseInspect(out);
    expect(state.current).toBe("20260102T000000Z-b");
    expect(state.releases.map((r) => r.id)).toEqual([
      "20260101T000000Z-a",
      "20260102T000000Z-b",
      "20260103T000000Z-c",
    ]);
    expect(state.releases[2]?.failed).toBe(true);
    expect(state.lock).toContain("ana");
    expect(state.journal?.previous).toBe("20260102T000000Z-b");
    expect(parseInspect("@missing\n").missing).toBe(true);
  });

  it("orders releases by staging time, so ids need not sort", () => {
    const state = parseInspect(
      "@current releases/v10\n@release v10 ok 300\n@release v9 ok 200\n@release v11 failed 400\n",
    );
    expect(state.releases.map((r) => r.id)).toEqual(["v9", "v10", "v11"]);
    expect(previousRelease(state)).toBe("v9");
    expect(
      previousRelease(parseInspect("@current releases/v9\n@release v10 ok 300\n@release v9 ok 200\n")),
    ).toBeUndefined();
  });

  it("the rollback target is the newest good release older than current", () => {
    expect(previousRelease(parseInspect(out))).toBe("20260101T000000Z-a");
    expect(previousRelease(parseInspect("@current releases/x\n@release x ok\n"))).toBeUndefined();
  });

  it("prunes failed releases first, then the oldest, never the protected ones", () => {
    const releases = ["1", "2", "3", "4", "5"].map((id, i) => ({ id, failed: id === "3", stagedAt: i }));
    expect(releasesToPrune(releases, 5, ["5"])).toEqual([]);
    expect(releasesToPrune(releases, 3, ["5", "4"])).toEqual(["3", "1"]);
    expect(releasesToPrune(releases, 2, ["1", "5"])).toEqual(["3", "2", "4"]);
  });

  it("skips torn history lines", () => {
    expect(parseHistory('{"event":"deploy","release":"a"}\n{"event":"dep\n\n{"event":"drain"}\n')).toEqual([
      { event: "deploy", release: "a" },
      { event: "drain" },
    ]);
  });
});

describe("PM2 process checks", () => {
  const list = (pid: number, status: string, restarts: number) =>
    `[PM2] Spawning PM2 daemon\n${JSON.stringify([{ name: "api", pid, pm2_env: { status, restart_time: restarts, pm_uptime: 1 } }])}`;

  it("reads pm2 jlist behind a banner", () => {
    expect(parseJlist(list(42, "online", 0), "api")).toEqual([
      {
        name: "api",
        pid: 42,
        status: "online",
        restarts: 0,
        startedAt: 1,
        memory: undefined,
        cpu: undefined,
      },
    ]);
    expect(parseJlist("garbage")).toEqual([]);
    // jlist-filter.cjs adds the release each instance runs (its NEXUS_RELEASE).
    const withRelease = JSON.stringify([
      { name: "api", pid: 7, pm2_env: { status: "online" }, release: "r1" },
    ]);
    expect(parseJlist(withRelease, "api")[0]?.release).toBe("r1");
  });

  it("names every problem: PM2 gave up on a crash-looping app (errored) and it restarted", () => {
    const started = { name: "api", pid: 50, status: "online", restarts: 1 };
    expect(processProblem([{ ...started, status: "errored", pid: 0, restarts: 11 }], [started], [40])).toBe(
      "the app is errored (pid 0); the app restarted 10 time(s) during the gate (crash loop)",
    );
  });
});
