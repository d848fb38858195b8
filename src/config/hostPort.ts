// `host:port` as the config writes addresses (nodes' sip, sip_tls, admin; trunk peers), split in one place.

/** The host and port of `host:port` (the port after the last colon). */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
}
