// Locating a SIP server by name (RFC 3263 §4, without NAPTR): a host with a
// port, or an IP address, is looked up as addresses only (A, then AAAA); a
// name without a port is looked up as SRV records of its transport
// (`_sip._udp`, `_sip._tcp`, `_sips._tcp`), ordered by priority and, within
// one priority, by weight (RFC 2782), each target's addresses in turn; a
// name with no SRV records falls back to its addresses on the transport's
// default port. Every address found is a server to try, in that order.
import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { SipPeer } from './transport.ts';
import { TandemError } from '../errors.ts';

export type SipTransportName = SipPeer['transport'];

/** What the config names: a host (name or address) and perhaps a port. */
export interface ServerName {
  host: string;
  port: number | undefined;
  transport: SipTransportName;
}

/** One server found: where to send, and the name it was found under (for the Request-URI and TLS's check). */
export interface LocatedServer extends SipPeer {
  host: string;
}

export class LocateError extends TandemError {}

/** How names are looked up: the system's resolver (with /etc/hosts), or given DNS servers. */
export interface NameLookup {
  addresses(host: string): Promise<string[]>;
  srv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

const DEFAULT_PORT: Record<SipTransportName, number> = { UDP: 5060, TCP: 5060, TLS: 5061 };
const SRV_PREFIX: Record<SipTransportName, string> = { UDP: '_sip._udp', TCP: '_sip._tcp', TLS: '_sips._tcp' };
/** DNS answers that mean "no such record", as opposed to a resolver that failed */
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

const codeOf = (err: unknown): string | undefined =>
  err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;

/**
 * The lookup a node uses: with `servers` (host:port of DNS servers), those
 * alone (A and AAAA asked of them); without, the system's getaddrinfo (so
 * /etc/hosts counts) for addresses and its resolvers for SRV.
 */
export function nameLookup(servers: readonly string[] = [], timeoutMs = 2000): NameLookup {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length) resolver.setServers([...servers]);
  const orEmpty = <T>(p: Promise<T[]>): Promise<T[]> =>
    p.catch((err: unknown) => {
      if (NOT_FOUND.has(codeOf(err) ?? '')) return [];
      throw err;
    });
  return {
    async addresses(host) {
      if (servers.length) {
        const [v4, v6] = await Promise.all([orEmpty(resolver.resolve4(host)), orEmpty(resolver.resolve6(host))]);
        return [...v4, ...v6];
      }
      return (await orEmpty(lookup(host, { all: true }))).map((a) => a.address);
    },
    srv: (name) => orEmpty(resolver.resolveSrv(name)),
  };
}

/** RFC 2782's order: lower priority first; within a priority, a weighted random draw (weight 0 last). */
export function srvOrder<T extends { priority: number; weight: number }>(
  records: readonly T[],
  random: () => number = Math.random,
): T[] {
  const out: T[] = [];
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  for (const p of priorities) {
    const left = records.filter((r) => r.priority === p).sort((a, b) => a.weight - b.weight);
    while (left.length) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let draw = random() * total;
        pick = left.findIndex((r) => (draw -= r.weight) < 0);
        if (pick < 0) pick = left.length - 1;
      }
      out.push(...left.splice(pick, 1));
    }
  }
  return out;
}

/** The servers `target` names, in the order to try them; throws LocateError when there are none. */
export async function locate(target: ServerName, dns: NameLookup): Promise<LocatedServer[]> {
  const { host, transport } = target;
  const at = (address: string, port: number, name: string): LocatedServer => ({ transport, address, port, host: name });
  if (isIP(host)) return [at(host, target.port ?? DEFAULT_PORT[transport], host)];
  const byAddress = async (name: string, port: number) => (await dns.addresses(name)).map((a) => at(a, port, name));
  let found: LocatedServer[] = [];
  try {
    if (target.port !== undefined) found = await byAddress(host, target.port);
    else {
      const srv = srvOrder(await dns.srv(`${SRV_PREFIX[transport]}.${host}`));
      // (a single "." target means the service is decidedly not there, RFC 2782)
      if (srv.length === 1 && srv[0]!.name === '.') throw new LocateError(`${host} says it has no SIP service`);
      if (srv.length)
        for (const r of srv) found.push(...(await byAddress(r.name, r.port).catch(() => [] as LocatedServer[])));
      else found = await byAddress(host, DEFAULT_PORT[transport]);
    }
  } catch (err) {
    if (err instanceof LocateError) throw err;
    throw new LocateError(`cannot look up ${host}: ${codeOf(err) ?? String(err)}`, { cause: err });
  }
  if (!found.length) throw new LocateError(`${host} has no address`);
  return found;
}
