// OPTIONS keep-alive of a trunk's peers (trunks.<t>.options_ping_s), from
// each node that carries the trunk, as CUCM's SIP OPTIONS ping and
// Kamailio's dispatcher probing do. Any answer means the peer is there (a
// 404 or 405 as much as a 200), except 503; no answer within the trunk's
// setup_timeout_ms means it is not. Calls skip peers seen down, and a trunk
// whose peers are all down refuses at once, so the route's next trunk is
// tried without waiting for timeouts. Peers start up: a node that has not
// probed yet tries them.
import type { Logger } from 'pino';
import type { TrunkSpec } from '../config/model.ts';
import type { SipStack } from '../sip/transactions.ts';
import { Dialog } from './dialog.ts';
import type { TrunkPeer, TrunkPeers } from './trunkPeers.ts';

export interface PeerView {
  peer: string;
  up: boolean;
  /** the last answer's status, 0 for none in time, null before the first probe */
  last_status: number | null;
}

interface PeerState {
  peer: TrunkPeer;
  up: boolean;
  last: number | null;
  timer: NodeJS.Timeout | undefined;
}

export class TrunkKeepalive {
  /** by trunk, then by server key (a server found again after a lookup keeps its state) */
  private readonly peers = new Map<string, Map<string, PeerState>>();
  private stopped = true;

  constructor(
    private readonly d: {
      stack: SipStack;
      sipAddress: string;
      trunks: () => readonly TrunkSpec[];
      servers: TrunkPeers;
      log: Logger;
    },
  ) {
    d.servers.on('changed', (trunk, list) => this.follow(trunk, list));
  }

  start(): void {
    this.stopped = false;
    for (const t of this.d.trunks()) this.follow(t.number, this.d.servers.list(t.number));
  }

  stop(): void {
    this.stopped = true;
    for (const states of this.peers.values()) for (const p of states.values()) clearTimeout(p.timer);
  }

  /** Whether this server of `trunk` answered its last probe (or was never probed). */
  up(trunk: string, key: string): boolean {
    return this.peers.get(trunk)?.get(key)?.up ?? true;
  }

  view(trunk: string): PeerView[] {
    return this.d.servers.list(trunk).map((p) => {
      const st = this.peers.get(trunk)?.get(p.key);
      return {
        peer: p.entry === `${p.address}:${p.port}` ? p.entry : `${p.entry} (${p.address}:${p.port})`,
        up: st?.up ?? true,
        last_status: st?.last ?? null,
      };
    });
  }

  /** Probes the trunk's servers as found now: new ones start, gone ones stop. */
  private follow(trunk: string, list: readonly TrunkPeer[]): void {
    if (this.stopped) return;
    const t = this.d.trunks().find((x) => x.number === trunk);
    if (!t) return;
    const states = this.peers.get(trunk) ?? new Map<string, PeerState>();
    this.peers.set(trunk, states);
    const keys = new Set(list.map((p) => p.key));
    for (const [k, st] of states) {
      if (keys.has(k)) continue;
      clearTimeout(st.timer);
      states.delete(k);
    }
    for (const p of list) {
      if (states.has(p.key)) continue;
      const st: PeerState = { peer: p, up: true, last: null, timer: undefined };
      states.set(p.key, st);
      if (t.optionsPingS > 0) this.probe(t, st);
    }
  }

  private probe(t: TrunkSpec, p: PeerState): void {
    if (this.stopped || this.peers.get(t.number)?.get(p.peer.key) !== p) return;
    const host = this.d.sipAddress;
    const uri = `sip:${p.peer.host}${p.peer.port ? `:${p.peer.port}` : ''}`;
    const req = Dialog.outgoing({
      fromUri: `sip:tandem@${host}`,
      toUri: uri,
      target: uri,
      peer: p.peer,
      contact: `sip:tandem@${host}`,
      callIdHost: host.split(':')[0]!,
    }).request('OPTIONS');
    let done = false;
    const settle = (status: number) => {
      if (done || this.stopped) return;
      done = true;
      clearTimeout(deadline);
      const up = status !== 0 && status !== 503 && status !== 408;
      if (up !== p.up) {
        const log = { trunk: t.number, peer: p.peer.entry, server: p.peer.key, status: status || 'no answer' };
        if (up) this.d.log.info(log, 'trunk peer answers again');
        else this.d.log.warn(log, 'trunk peer does not answer: calls skip it');
      }
      p.up = up;
      p.last = status;
      p.timer = setTimeout(() => this.probe(t, p), t.optionsPingS * 1000);
      p.timer.unref();
    };
    const deadline = setTimeout(() => settle(0), t.setupTimeoutMs);
    this.d.stack.request(req, p.peer, (res) => {
      if (res.status >= 200) settle(res.status);
    });
  }
}
