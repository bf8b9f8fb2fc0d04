import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxInfo } from "../../src/sandbox/index.js";
import { sandboxPurge, sandboxUp } from "../../src/sandbox/index.js";
import { fetchCommand, fetchInput } from "../../src/transfer/fetch-command.js";
import { ArtifactServer } from "../../src/transfer/http-server.js";
import { APP_NAME, nexus, uniqueRelease, writeConfig } from "./helpers.js";
import { PROJECT_ROOT, TEST_IP_PREFIX, TEST_TRANSFER_DIR } from "./sandbox-env.js";

/**
 * A sandbox of its own, on 127.1.<n>. beside the shared one on 127.0.<n>. (no clash with any
 * NEXUS_TEST_SANDBOX_ID): nexus-alpha is a normal host (and runs Nginx), nexus-beta has no SFTP
 * subsystem at all, nexus-gamma's SFTP subsystem is OpenSSH's sftp-server behind
 * fixtures/sftp-corrupt.mjs, which flips a byte of the first write on its way to the disk, and
 * nexus-delta's subsystem is a program that exits at once (`false`).
 */
const PREFIX = TEST_IP_PREFIX.replace(/^127\.0\./, "127.1.");
const SFTP_SERVER = [
  "/usr/lib/openssh/sftp-server",
  "/usr/libexec/openssh/sftp-server",
  "/usr/libexec/sftp-server",
].find((file) => existsSync(file));
/** The hosts' login user runs it: a copy outside the checkout, which may sit in a closed home (/root). */
function reachableCopy(file: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nexus-fixture-"));
  chmodSync(dir, 0o755);
  const copy = path.join(dir, path.basename(file));
  copyFileSync(file, copy);
  chmodSync(copy, 0o644);
  return copy;
}
const CORRUPTING = `${process.execPath} ${reachableCopy(path.join(PROJECT_ROOT, "fixtures", "sftp-corrupt.mjs"))} ${SFTP_SERVER} -d %h`;

let info: SandboxInfo;
let dir: string;

function deployDirOf(name: string): string {
  const host = info.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no host ${name}`);
  return path.join(host.home, "apps", APP_NAME);
}

function currentOf(name: string): string | undefined {
  const link = path.join(deployDirOf(name), "current");
  return existsSync(link) ? path.basename(readlinkSync(link)) : undefined;
}

function incomingOf(name: string): string[] {
  const incoming = path.join(deployDirOf(name), ".nexus", "incoming");
  return existsSync(incoming) ? readdirSync(incoming) : [];
}

function upstreamFile(): string {
  if (path.isAbsolute(info.lb.upstreamFile)) return info.lb.upstreamFile;
  const lb = info.hosts.find((h) => h.name === info.lb.host);
  return path.join(lb?.home ?? "", info.lb.upstreamFile.replace(/^~\//, ""));
}

function config(overrides: Record<string, unknown> = {}): string {
  return writeConfig({ transfer: { listen: "127.0.0.1:0" }, ...overrides }, info);
}

interface JsonEvent {
  type: string;
  server?: string;
  step?: string;
  status?: string;
  message?: string;
  sent?: number;
  total?: number;
}

function events(stdout: string): JsonEvent[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as JsonEvent);
}

function uploadNote(all: JsonEvent[], server: string): string | undefined {
  return all.find(
    (e) => e.type === "step" && e.step === "upload" && e.status === "done" && e.server === server,
  )?.message;
}

describe.skipIf(!SFTP_SERVER)("artifact transfer: SFTP, and HTTP when SFTP cannot deliver", () => {
  beforeAll(async () => {
    dir = TEST_TRANSFER_DIR;
    await sandboxPurge(dir);
    info = await sandboxUp({
      dir,
      ipPrefix: PREFIX,
      hosts: 4,
      noSftp: ["nexus-beta"],
      sftpServer: { "nexus-gamma": CORRUPTING, "nexus-delta": "/bin/false" },
    });
  });

  afterAll(async () => {
    if (!info) return;
    // The state dir too (dir is a link to it, under /var/tmp).
    await sandboxPurge(dir);
  });

  it("auto: SFTP where it works; HTTP without SFTP, when it exits, and for a corrupted upload; all serve the release", async () => {
    const release = uniqueRelease("transfer");
    const run = await nexus(["-c", config(), "--json", "deploy", "--release-id", release]);
    expect(run.exitCode, run.all).toBe(0);
    const all = events(run.stdout);

    expect(uploadNote(all, "nexus-alpha")).toMatch(/^sftp, [\d.]+ MB\/s$/);
    expect(uploadNote(all, "nexus-beta")).toMatch(/^http \(fallback\), [\d.]+ MB\/s$/);
    expect(uploadNote(all, "nexus-gamma")).toMatch(/^http \(fallback\), [\d.]+ MB\/s$/);
    expect(uploadNote(all, "nexus-delta")).toMatch(/^http \(fallback\), [\d.]+ MB\/s$/);
    const warnings = all.filter((e) => e.type === "warn").map((e) => `${e.server}: ${e.message}`);
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^nexus-beta: SFTP upload failed: SFTP is unavailable: Unable to start subsystem: sftp; fetching over HTTP instead$/,
      ),
    );
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^nexus-gamma: checksum mismatch after the SFTP upload: expected [0-9a-f]{64}, got [0-9a-f]{64}; the file was removed; fetching over HTTP instead$/,
      ),
    );
    expect(warnings).toContain(
      "nexus-delta: SFTP upload failed: SFTP is unavailable: Received exit code 1 while establishing SFTP session; fetching over HTTP instead",
    );
    // Progress is reported for the HTTP transfer too, up to the whole file.
    const betaProgress = all.filter((e) => e.type === "progress" && e.server === "nexus-beta");
    expect(betaProgress.length).toBeGreaterThan(0);
    expect(betaProgress.at(-1)?.sent).toBe(betaProgress.at(-1)?.total);

    for (const host of info.hosts) {
      expect(currentOf(host.name)).toBe(release);
      expect(incomingOf(host.name)).toEqual([]);
    }
    const answers = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async () => {
        const response = await request(info.lb.url, { reset: true });
        return ((await response.body.json()) as { release?: string }).release;
      }),
    );
    expect(new Set(answers)).toEqual(new Set([release]));
  });

  it('method "sftp": the corrupted upload is caught on the server, removed, not extracted; nothing is drained', async () => {
    const before = currentOf("nexus-gamma");
    const upstream = readFileSync(upstreamFile(), "utf8");
    const release = uniqueRelease("corrupt");
    const run = await nexus([
      "-c",
      config({ transfer: { method: "sftp", listen: "127.0.0.1:0" } }),
      "deploy",
      "--only",
      "nexus-gamma",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toMatch(
      /nexus-gamma: checksum mismatch after the SFTP upload: expected [0-9a-f]{64}, got [0-9a-f]{64}; the file was removed/,
    );
    expect(run.stderr).not.toMatch(/nexus-gamma: extract/);
    expect(run.stderr).not.toMatch(/nexus-gamma: drain/);
    expect(existsSync(path.join(deployDirOf("nexus-gamma"), "releases", release))).toBe(false);
    expect(incomingOf("nexus-gamma")).toEqual([]);
    expect(currentOf("nexus-gamma")).toBe(before);
    expect(readFileSync(upstreamFile(), "utf8")).toBe(upstream);
  });

  it('method "sftp" on a host without an SFTP subsystem: one clear error, nothing changed', async () => {
    const before = currentOf("nexus-beta");
    const run = await nexus([
      "-c",
      config({ transfer: { method: "sftp" } }),
      "deploy",
      "--only",
      "nexus-beta",
      "--release-id",
      uniqueRelease("nosftp"),
    ]);
    expect(run.exitCode, run.all).toBe(1);
    expect(run.stderr).toContain("nexus-beta: SFTP is unavailable: Unable to start subsystem: sftp");
    expect(currentOf("nexus-beta")).toBe(before);
  });

  it("Ctrl-C during an upload that would never finish (a stalled link) stops it: exit 130, no HTTP fallback, nothing extracted", async () => {
    const gamma = info.hosts.find((h) => h.name === "nexus-gamma");
    if (!gamma) throw new Error("no nexus-gamma");
    const marker = path.join(gamma.home, "sftp-stall");
    writeFileSync(marker, "");
    try {
      const before = currentOf("nexus-gamma");
      const release = uniqueRelease("int-upload");
      const child = execa(
        "node",
        [
          path.join(PROJECT_ROOT, "bin", "nexus.js"),
          "-c",
          config(),
          "--json",
          "deploy",
          "--only",
          "nexus-gamma",
          "--release-id",
          release,
        ],
        { reject: false, all: true, env: { CI: "true" }, timeout: 120_000 },
      );
      // Interrupted once the upload is under way: its first write is held by the stalled link.
      const stalled = path.join(gamma.home, "sftp-stalled");
      const watch = setInterval(() => {
        if (existsSync(stalled)) {
          clearInterval(watch);
          child.kill("SIGINT");
        }
      }, 20);
      const run = await child;
      clearInterval(watch);
      expect(existsSync(stalled)).toBe(true);
      expect(run.exitCode, run.all).toBe(130);
      const upload = events(run.stdout ?? "").find(
        (e) => e.type === "step" && e.step === "upload" && e.server === "nexus-gamma" && e.status !== "start",
      );
      expect(upload?.status).toBe("fail");
      expect(run.all).not.toContain("fetching over HTTP instead");
      expect(existsSync(path.join(deployDirOf("nexus-gamma"), "releases", release))).toBe(false);
      expect(currentOf("nexus-gamma")).toBe(before);
    } finally {
      rmSync(marker, { force: true });
      rmSync(path.join(gamma.home, "sftp-stalled"), { force: true });
    }
  });

  it('method "http": every host fetches from nexus, in parallel, from one listener on this end of the SSH connections', async () => {
    const release = uniqueRelease("http");
    const run = await nexus([
      "-c",
      config({ transfer: { method: "http" } }),
      "--json",
      "deploy",
      "--release-id",
      release,
    ]);
    expect(run.exitCode, run.all).toBe(0);
    const all = events(run.stdout);
    for (const host of info.hosts) {
      expect(uploadNote(all, host.name)).toMatch(/^http, [\d.]+ MB\/s$/);
      expect(currentOf(host.name)).toBe(release);
    }
  });
});

describe("the fetch command, run by a shell against nexus's HTTP server", () => {
  const bin = mkdtempSync(path.join(os.tmpdir(), "nexus-fetch-bin-"));
  const work = mkdtempSync(path.join(os.tmpdir(), "nexus-fetch-"));
  const artifact = path.join(work, "release.tar.gz");

  beforeAll(async () => {
    // A PATH with sh, node and the coreutils the command needs, but no curl or wget.
    for (const tool of ["sh", "sha256sum", "cut", "rm", "mv", "timeout"]) {
      const found = (await execa("sh", ["-c", `command -v ${tool}`])).stdout.trim();
      symlinkSync(found, path.join(bin, tool));
    }
    symlinkSync(process.execPath, path.join(bin, "node"));
    await execa("sh", ["-c", `head -c 3000000 /dev/urandom > ${artifact}`]);
  });

  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  async function sha256(file: string): Promise<string> {
    return (await execa("sha256sum", [file])).stdout.split(" ")[0] as string;
  }

  it("an offer stays spent once the client has every byte, even before the server's read of the file has ended", async () => {
    // Every thread of libuv's pool is held by an open() of a FIFO nobody writes yet, from the moment
    // the last bytes are read: the read stream's next read (the one that finds the end of the
    // file, after which a pipe would end the response) waits behind them, as on a loaded machine.
    const fifos = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, (_, i) =>
      path.join(work, `pool-${i}`),
    );
    for (const fifo of fifos) await execa("mkfifo", [fifo]);
    let held: Promise<FileHandle>[] = [];
    const server = await ArtifactServer.start({ file: artifact, listen: { host: "127.0.0.1", port: 0 } });
    const offer = server.offer(30_000, (sent, total) => {
      if (sent === total) held = fifos.map((fifo) => open(fifo, "r"));
    });
    try {
      // A client that reads Content-Length bytes and hangs up at once, as curl does.
      expect(await getAndHangUp(offer.url)).toEqual({ status: 200, bytes: 3_000_000 });
      const again = await request(offer.url);
      expect(again.statusCode).toBe(410);
      await again.body.dump();
    } finally {
      for (const fifo of fifos) closeSync(openSync(fifo, "w"));
      for (const handle of await Promise.all(held)) await handle.close();
      offer.withdraw();
      await server.whenClosed();
    }
  });

  for (const fetcher of ["node", "curl", "wget"] as const) {
    it(`fetches with ${fetcher} (URL on stdin), checks the sha256, renames; the offer serves one download; the listener closes once it ends`, async () => {
      const server = await ArtifactServer.start({ file: artifact, listen: { host: "127.0.0.1", port: 0 } });
      const offer = server.offer(30_000);
      const dest = path.join(work, `${fetcher}.tar.gz`);
      const command = fetchCommand({
        dest,
        sha256: await sha256(artifact),
        timeoutSeconds: 30,
        fetchers: [fetcher],
      });
      const env = fetcher === "node" ? { PATH: bin } : {};
      const run = await execa("/bin/sh", ["-c", command], {
        reject: false,
        env,
        extendEnv: fetcher !== "node",
        input: fetchInput(offer.url),
      });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(command).not.toContain(offer.token);
      expect(await sha256(dest)).toBe(await sha256(artifact));
      expect(existsSync(`${dest}.part`)).toBe(false);
      expect(offer.sent()).toBe(3_000_000);

      // The offer is spent: the same URL answers 410 to a second fetch, and the fetch command fails.
      const again = await request(offer.url);
      expect(again.statusCode).toBe(410);
      await again.body.dump();
      const second = await execa("/bin/sh", ["-c", command], {
        reject: false,
        env,
        extendEnv: fetcher !== "node",
        input: fetchInput(offer.url),
      });
      expect(second.exitCode).toBe(75);

      // Any other path is a 404, and so is the offer's own URL once withdrawn.
      const wrong = await request(offer.url.replace(/\/[0-9a-f]{64}\//, `/${"0".repeat(64)}/`));
      expect(wrong.statusCode).toBe(404);
      await wrong.body.dump();
      offer.withdraw();
      await server.whenClosed();
      expect(server.isClosed).toBe(true);
    });
  }

  it("a checksum mismatch exits 65 and leaves no file", async () => {
    const server = await ArtifactServer.start({ file: artifact, listen: { host: "127.0.0.1", port: 0 } });
    const offer = server.offer(30_000);
    const dest = path.join(work, "bad.tar.gz");
    const command = fetchCommand({ dest, sha256: "0".repeat(64), timeoutSeconds: 30 });
    const run = await execa("sh", ["-c", command], { reject: false, input: fetchInput(offer.url) });
    offer.withdraw();
    expect(run.exitCode).toBe(65);
    expect(run.stderr).toMatch(/checksum mismatch: expected 0{64}, got [0-9a-f]{64}/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it("a server with no curl, wget or node says so", async () => {
    const empty = path.join(work, "empty-bin");
    mkdirSync(empty, { recursive: true });
    // A shell, and nothing to fetch with.
    if (!existsSync(path.join(empty, "sh"))) symlinkSync("/bin/sh", path.join(empty, "sh"));
    const command = fetchCommand({
      dest: path.join(work, "none"),
      sha256: "0".repeat(64),
      timeoutSeconds: 5,
    });
    const run = await execa("/bin/sh", ["-c", command], {
      reject: false,
      env: { PATH: empty },
      extendEnv: false,
      input: fetchInput("http://127.0.0.1:9/x"),
    });
    expect(run.exitCode).toBe(127);
    expect(run.stderr).toContain("has none of curl, wget, node");
  });
});

/** GET on a raw socket: the status and the body's length; the socket is destroyed once the body is whole. */
function getAndHangUp(url: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const socket = net.connect(Number(target.port), target.hostname, () =>
      socket.write(`GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\n\r\n`),
    );
    let received = Buffer.alloc(0);
    let bodyStart = -1;
    let length = 0;
    let status = 0;
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (bodyStart < 0) {
        const end = received.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = received.subarray(0, end).toString("latin1");
        status = Number(head.split(" ")[1]);
        length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        bodyStart = end + 4;
      }
      if (received.length - bodyStart >= length) {
        socket.destroy();
        resolve({ status, bytes: received.length - bodyStart });
      }
    });
    socket.on("error", reject);
  });
}
