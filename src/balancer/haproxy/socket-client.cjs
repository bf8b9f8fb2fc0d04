// @ts-check
/**
 * `node -e <this> SOCKET`: a client of HAProxy's admin socket for hosts without socat (channel.sh
 * runs it): stdin to the socket, the socket to stdout, until either side ends.
 */
const socket = require("node:net").connect(process.argv[1] ?? "");
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on("error", (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
socket.on("close", () => process.exit(0));
