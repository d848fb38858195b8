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
import type { SipPeer } from '../sip/transport.ts';
import { Dialog } from './dialog.ts';

export interface PeerView {
  peer: string;
  up: boolean;
  /** the last answer's status, 0 for none in time, null before the first probe */
  last_status: number | null;
}

interface PeerState {
  peer: SipPeer;
  up: boolean;
  last: number | null;
  timer: NodeJS.Timeout | undefined;
}

export class TrunkKeepalive {
  private readonly peers = new Map<string, PeerState[]>();
  private stopped = false;

  constructor(private readonly d: { stack: SipStack; sipAddress: string; trunks: readonly TrunkSpec[]; log: Logger }) {
    for (const t of d.trunks) {
      this.peers.set(
        t.number,
        t.peers.map((p) => ({
          peer: { transport: 'UDP', address: p.address, port: p.port },
          up: true,
          last: null,
          timer: undefined,
        })),
      );
    }
  }

  start(): void {
    for (const t of this.d.trunks) {
      if (t.optionsPingS === 0) continue;
      this.peers.get(t.number)!.forEach((p) => this.probe(t, p));
    }
  }

  stop(): void {
    this.stopped = true;
    for (const list of this.peers.values()) for (const p of list) clearTimeout(p.timer);
  }

  /** Whether peer `i` of `trunk` answered its last probe (or was never probed). */
  up(trunk: string, i: number): boolean {
    return this.peers.get(trunk)?.[i]?.up ?? true;
  }

  view(trunk: string): PeerView[] {
    return (this.peers.get(trunk) ?? []).map((p) => ({
      peer: `${p.peer.address}:${p.peer.port}`,
      up: p.up,
      last_status: p.last,
    }));
  }

  private probe(t: TrunkSpec, p: PeerState): void {
    if (this.stopped) return;
    const host = this.d.sipAddress;
    const uri = `sip:${p.peer.address}:${p.peer.port}`;
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
        const log = { trunk: t.number, peer: `${p.peer.address}:${p.peer.port}`, status: status || 'no answer' };
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
