// A TCP proxy that adds latency, for the bench's "40 ms round trip" scenario: in front of each
// sandbox sshd (loopback only), every chunk is passed on `delayMs` later in each direction, in
// order. No bandwidth limit, no loss: only the round trips a real network adds. Chosen over
// `tc netem` because netem on `lo` would slow every process on the machine, and it needs a kernel
// module this machine may lack.
import net from "node:net";

/**
 * Listens on `listen.host:listen.port` (0: any free port) and forwards each connection to
 * `target`, delaying each direction by `delayMs`. Resolves with the port and a close().
 */
export async function startLatencyProxy({ listen, target, delayMs }) {
  const sockets = new Set();
  const relay = (from, to) => {
    from.on("data", (chunk) => {
      // Timers of one duration fire in the order they were set: the byte order holds.
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
    from.on("end", () => setTimeout(() => to.end(), delayMs));
    from.on("error", () => to.destroy());
    from.on("close", () => setTimeout(() => to.destroy(), delayMs + 1));
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: target.host, port: target.port });
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port ?? 0, listen.host, resolve);
  });
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The round trip a proxy adds, as measured (timers fire late on a loaded machine): the median of
 * `times` one-byte echoes through a proxy of `delayMs` to a local echo server.
 */
export async function measureProxyRtt(delayMs, times = 10) {
  const echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise((resolve) => echo.listen(0, "127.0.0.1", resolve));
  const proxy = await startLatencyProxy({
    listen: { host: "127.0.0.1", port: 0 },
    target: { host: "127.0.0.1", port: echo.address().port },
    delayMs,
  });
  const socket = net.connect({ host: "127.0.0.1", port: proxy.port });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  const samples = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await new Promise((resolve) => {
      socket.once("data", resolve);
      socket.write("x");
    });
    samples.push(performance.now() - started);
  }
  socket.destroy();
  await proxy.close();
  echo.close();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/**
 * The proxies in a process of their own, at a higher priority (`nice -n -10` as root): timers in
 * a process that competes for the CPU fire late, and the round trip would grow with the load.
 * Resolves with the measured round trip and a close().
 */
export async function spawnLatencyProxies(specs, delayMs) {
  const { spawn } = await import("node:child_process");
  const self = new URL(import.meta.url).pathname;
  const args = [self, "--serve", JSON.stringify({ specs, delayMs })];
  const root = process.getuid?.() === 0;
  const child = spawn(
    root ? "nice" : process.execPath,
    root ? ["-n", "-10", process.execPath, ...args] : args,
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const ready = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      out += chunk;
      const line = out.split("\n")[0];
      if (out.includes("\n")) resolve(JSON.parse(line));
    });
    child.once("exit", (code) => reject(new Error(`the latency proxies exited (${code})`)));
  });
  return {
    rttMs: ready.rttMs,
    close: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.stdin.end();
      }),
  };
}

if (process.argv[2] === "--serve") {
  const { specs, delayMs } = JSON.parse(process.argv[3]);
  const proxies = await Promise.all(specs.map((spec) => startLatencyProxy({ ...spec, delayMs })));
  const rttMs = await measureProxyRtt(delayMs);
  process.stdout.write(`${JSON.stringify({ rttMs })}\n`);
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await Promise.all(proxies.map((p) => p.close()));
    process.exit(0);
  });
}
