// Where the trunks a node carries are: each configured peer looked up
// (RFC 3263, sip/locate.ts) into the servers to try, in order, kept fresh
// every sip.dns_refresh_s (a lookup that fails keeps the last servers it
// found: a DNS outage must not take the trunk down), and the reverse: which
// trunk a request comes from. Over UDP a request is the trunk's when it comes
// from one of its servers' address and port; over TCP or TLS the far end
// connects from a port of its choosing, so its address (and transport) is
// what counts.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { TrunkSpec } from '../config/model.ts';
import { locate, type LocatedServer, type NameLookup } from '../sip/locate.ts';
import type { SipPeer } from '../sip/transport.ts';
import { errorMessage } from '../errors.ts';

/** One server of a trunk, found from one configured peer. */
export interface TrunkPeer extends LocatedServer {
  /** transport, address and port: one keep-alive state per key */
  key: string;
  /** the configured peer it was found from */
  entry: string;
  /** TLS: the CAs its certificate must chain to, and the name it must carry */
  tls?: { servername: string; ca: Buffer | undefined };
}

export interface TrunkPeersEvents {
  /** a trunk's list of servers changed (a lookup found others) */
  changed: [trunk: string, peers: readonly TrunkPeer[]];
}

/** servers tried per trunk at most (a name may lead to many addresses) */
const MAX_SERVERS = 32;

const entryOf = (p: TrunkSpec['peers'][number]) => (p.port === undefined ? p.host : `${p.host}:${p.port}`);

export class TrunkPeers extends EventEmitter<TrunkPeersEvents> {
  private lists = new Map<string, TrunkPeer[]>();
  private byAddress = new Map<string, TrunkSpec>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly d: {
      /** the trunks this node carries, as the config says now */
      trunks: () => readonly TrunkSpec[];
      dns: NameLookup;
      refreshS: number;
      /** where relative file names in the config are from */
      baseDir: () => string;
      log: Logger;
    },
  ) {
    super();
  }

  /** Looks every peer up once (calls wait for it at start), then again every refreshS. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The servers of `trunk`, in the order to try them (empty: none found yet). */
  list(trunk: string): readonly TrunkPeer[] {
    return this.lists.get(trunk) ?? [];
  }

  /** The trunk a request from `from` comes from, if any. */
  trunkAt(from: SipPeer): TrunkSpec | undefined {
    return this.byAddress.get(addressKey(from));
  }

  /** Looks every trunk's peers up again (also after a config change). */
  async refresh(): Promise<void> {
    const trunks = this.d.trunks();
    const lists = new Map<string, TrunkPeer[]>();
    await Promise.all(trunks.map(async (t) => lists.set(t.number, await this.lookUp(t))));
    if (this.stopped) return;
    const byAddress = new Map<string, TrunkSpec>();
    for (const t of trunks) {
      const list = lists.get(t.number)!;
      for (const p of list) {
        const k = addressKey(p);
        const other = byAddress.get(k);
        if (other && other !== t)
          this.d.log.warn(
            { trunk: t.number, other: other.number, peer: p.key },
            'two trunks share a peer address: calls from it are taken as the first',
          );
        else byAddress.set(k, t);
      }
      const before = this.lists.get(t.number) ?? [];
      if (before.map((p) => p.key).join() !== list.map((p) => p.key).join()) {
        this.d.log.info({ trunk: t.number, peers: list.map((p) => `${p.host} ${p.key}`) }, 'trunk servers');
        this.lists.set(t.number, list);
        this.emit('changed', t.number, list);
      }
    }
    for (const name of this.lists.keys()) if (!lists.has(name)) this.lists.delete(name);
    this.byAddress = byAddress;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () =>
        void this.refresh()
          .catch((err: unknown) => this.d.log.warn({ err: errorMessage(err) }, 'trunk lookup failed'))
          .finally(() => this.schedule()),
      this.d.refreshS * 1000,
    );
    this.timer.unref();
  }

  /** A trunk's servers: each configured peer's, in order; one whose lookup fails keeps what it found before. */
  private async lookUp(t: TrunkSpec): Promise<TrunkPeer[]> {
    const before = this.lists.get(t.number) ?? [];
    let ca: Buffer | undefined;
    if (t.transport === 'TLS' && t.tlsCa !== undefined) {
      const file = isAbsolute(t.tlsCa) ? t.tlsCa : resolve(this.d.baseDir(), t.tlsCa);
      try {
        ca = readFileSync(file);
        // The same CAs keep the same buffer: open connections are reused only for the same name and CAs.
        const old = before[0]?.tls?.ca;
        if (old?.equals(ca)) ca = old;
      } catch (err) {
        // Without its CA no server could be trusted: none is tried rather than one unchecked.
        this.d.log.error({ trunk: t.number, file, err: errorMessage(err) }, "cannot read the trunk's tls_ca");
        return [];
      }
    }
    const out: TrunkPeer[] = [];
    const seen = new Set<string>();
    for (const p of t.peers) {
      const entry = entryOf(p);
      let found: LocatedServer[];
      try {
        found = await locate({ host: p.host, port: p.port, transport: t.transport }, this.d.dns);
      } catch (err) {
        const kept = before.filter((x) => x.entry === entry);
        this.d.log.warn(
          { trunk: t.number, peer: entry, err: errorMessage(err), kept: kept.length },
          kept.length ? 'trunk peer lookup failed: keeping the servers found before' : 'trunk peer lookup failed',
        );
        found = kept;
      }
      for (const s of found) {
        if (out.length >= MAX_SERVERS) {
          this.d.log.warn({ trunk: t.number, peer: entry, kept: MAX_SERVERS }, 'trunk has more servers than are tried');
          break;
        }
        const key = `${s.transport}:${s.address}:${s.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({
          ...s,
          key,
          entry,
          ...(t.transport === 'TLS' ? { tls: { servername: s.host, ca } } : {}),
        });
      }
    }
    return out;
  }
}

/** UDP: address and port; TCP and TLS: the address (the far end connects from any port). */
function addressKey(p: SipPeer): string {
  return p.transport === 'UDP' ? `UDP|${p.address}|${p.port}` : `${p.transport}|${p.address}`;
}
