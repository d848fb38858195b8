// A network of its own for fault tests: the nats-server in a network
// namespace made for the test, each node reaching it over its own veth pair
// (private addresses that exist only in this namespace and on these links),
// so one node's link to the bus can be cut or made lossy while SIP and RTP
// stay on the loopback. Faults are iptables rules inside the namespace only
// (DROP, and `statistic` for random loss). This machine's kernel has no
// netem qdisc, so latency is added by a relay of the test's own on the
// link's host side (DelayRelay), which each node's bus URL points at. Made
// and removed by the test itself; needs root (the test command runs as root).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { DelayRelay } from './delayRelay.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export class BusNetwork {
  private readonly links = new Map<string, { host: string; inner: string; hostAddr: string; innerAddr: string }>();
  private readonly relays = new Map<string, DelayRelay>();
  private constructor(readonly ns: string) {}

  /** A namespace and one veth pair per node: 10.231.<i>.1 on the host side, 10.231.<i>.2 inside. */
  static create(nodes: string[]): BusNetwork {
    if (process.getuid?.() !== 0)
      throw new Error('network fault tests need root (ip netns, tc): run the test command as root');
    const tag = randomBytes(3).toString('hex');
    const net = new BusNetwork(`tandem-${tag}`);
    ip('netns', 'add', net.ns);
    try {
      ip('-n', net.ns, 'link', 'set', 'lo', 'up');
      nodes.forEach((node, i) => {
        const host = `tb${tag}${i}`;
        const inner = `tn${tag}${i}`;
        const hostAddr = `10.231.${i}.1`;
        const innerAddr = `10.231.${i}.2`;
        ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inner);
        ip('link', 'set', inner, 'netns', net.ns);
        ip('addr', 'add', `${hostAddr}/30`, 'dev', host);
        ip('link', 'set', host, 'up');
        ip('-n', net.ns, 'addr', 'add', `${innerAddr}/30`, 'dev', inner);
        ip('-n', net.ns, 'link', 'set', inner, 'up');
        net.links.set(node, { host, inner, hostAddr, innerAddr });
      });
    } catch (err) {
      net.destroy();
      throw err;
    }
    return net;
  }

  /** The NATS URL `node` uses: a relay on its link's host side, to the server's address on that link. */
  async busUrl(node: string, port: number): Promise<string> {
    const l = this.link(node);
    this.relays.get(node)?.close();
    const relay = await DelayRelay.start(l.hostAddr, { host: l.innerAddr, port });
    this.relays.set(node, relay);
    return `nats://${relay.host}:${relay.port}`;
  }

  /** Adds `ms` of latency to each direction of `node`'s link to the bus (0 takes it away). */
  delay(node: string, ms: number): void {
    const relay = this.relays.get(node);
    if (!relay) throw new Error(`no relay for ${node}: busUrl() makes it`);
    relay.delayMs = ms;
  }

  /** Drops everything on `node`'s link to the bus, both ways (a partition: sockets stay open, nothing arrives). */
  cut(node: string): void {
    this.rules(node, []);
  }

  /** Drops this share of the packets on `node`'s link, each way, at random (e.g. 0.05). */
  lossy(node: string, share: number): void {
    this.rules(node, ['-m', 'statistic', '--mode', 'random', '--probability', String(share)]);
  }

  heal(node: string): void {
    const relay = this.relays.get(node);
    if (relay) relay.delayMs = 0;
    const l = this.link(node);
    for (const [chain, dir] of [
      ['INPUT', '-i'],
      ['OUTPUT', '-o'],
    ] as const) {
      // Delete every rule of this link (one per fault) until none is left.
      for (;;) {
        const rules = ip('netns', 'exec', this.ns, 'iptables', '-w', '-S', chain)
          .split('\n')
          .filter((r) => r.includes(` ${dir} ${l.inner} `));
        if (rules.length === 0) break;
        ip('netns', 'exec', this.ns, 'iptables', '-w', ...rules[0]!.replace(/^-A /, '-D ').split(' '));
      }
    }
  }

  private rules(node: string, match: string[]): void {
    const l = this.link(node);
    ip('netns', 'exec', this.ns, 'iptables', '-w', '-A', 'INPUT', '-i', l.inner, ...match, '-j', 'DROP');
    ip('netns', 'exec', this.ns, 'iptables', '-w', '-A', 'OUTPUT', '-o', l.inner, ...match, '-j', 'DROP');
  }

  /** Removes the namespace and every link (deleting one end of a veth deletes both). */
  destroy(): void {
    for (const r of this.relays.values()) r.close();
    for (const l of this.links.values()) {
      try {
        ip('link', 'del', l.host);
      } catch {
        // already gone with the namespace
      }
    }
    try {
      ip('netns', 'del', this.ns);
    } catch {
      // never made
    }
  }

  private link(node: string) {
    const l = this.links.get(node);
    if (!l) throw new Error(`no link for ${node}`);
    return l;
  }
}
