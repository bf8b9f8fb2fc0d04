/**
 * An IPv4 address and port as /proc/net/tcp writes them ("0100007F:0BB8" for 127.0.0.1:3000):
 * what scripts that count or find sockets on a server match. Undefined for anything else (a host
 * name, IPv6): such sockets cannot be matched by address.
 */
export function procNetTcpAddress(address: string): string | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(address);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const port = Number(match[5]);
  if (octets.some((o) => o > 255) || port > 65535) return undefined;
  const ip = octets
    .reverse()
    .map((o) => o.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
  return `${ip}:${procNetTcpPort(port)}`;
}

/** A port as /proc/net/tcp writes it: four upper-case hex digits. */
export function procNetTcpPort(port: number): string {
  return port.toString(16).padStart(4, "0").toUpperCase();
}
