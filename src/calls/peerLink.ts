// The link between the two halves of a call (one per phone's node, possibly
// the same node): call signals over the bus, each checked on arrival (its
// schema, and that it comes from the node of the call's other half).
import type { Logger } from 'pino';
import { claimedBy, type Bus, type BusMessage, type Subscription } from '../cluster/bus.ts';
import { encode, parseMessage } from '../cluster/messages.ts';
import type { Subjects } from '../cluster/subjects.ts';
import type { ClusterModel } from '../config/model.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { CallTable } from './callTable.ts';
import type { HalfCall } from './halfCall.ts';
import { CallSignal, CallSignalReply, type OutgoingSignal } from './signals.ts';
import { errorMessage } from '../errors.ts';

export interface PeerLinkDeps {
  model: ClusterModel;
  node: string;
  bus: Bus;
  subjects: Subjects;
  mrm: MediaResourceManager;
  table: CallTable;
  log: Logger;
}

export class PeerLink {
  private sub: Subscription | undefined;

  constructor(private readonly d: PeerLinkDeps) {}

  /** this node's name (signals it sends on its own behalf say so) */
  get node(): string {
    return this.d.node;
  }

  /** Serves this node's call signals; `handle` sees only well-formed signals from the right node. */
  serve(handle: (s: CallSignal) => Promise<CallSignalReply>): void {
    this.sub = this.d.bus.serve(this.d.subjects.calls(this.d.node), async (m) => {
      const p = parseMessage(CallSignal, m.data);
      if (!p.ok) {
        this.d.log.warn({ error: p.error }, 'dropped malformed call signal');
        return encode({ ok: false, status: 400, reason: p.error.slice(0, 200) });
      }
      if (!this.fromPeer(m, p.value)) return encode({ ok: false, status: 403, reason: 'not the peer of this call' });
      try {
        return encode(await handle(p.value));
      } catch (err) {
        this.d.log.error({ err, signal: p.value.op }, 'call signal failed');
        return encode({ ok: false, status: 500, reason: 'call signal failed' });
      }
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  /** Sends a signal to the other half of the call; an unreachable node reads as 503. */
  async signal(h: HalfCall, s: OutgoingSignal): Promise<CallSignalReply> {
    if (!h.peerNode) return { ok: false, status: 500, reason: 'no other half' };
    // A signal from a half goes to the other role's half (same node or not).
    const msg: CallSignal =
      'call' in s && s.op !== 'setup' && s.op !== 'conference_left'
        ? { ...s, to: h.role === 'caller' ? 'callee' : 'caller' }
        : s;
    return this.send(h.peerNode, msg);
  }

  /**
   * Asks the callee's node again for the call (after a refusal the caller's
   * half could mend: a transcoder, an MTP), with the offer as the callee must
   * now see it. A refusal of the new attempt ends the caller's half.
   */
  async setupAgain(h: HalfCall, offer: string): Promise<CallSignalReply> {
    return this.signal(h, {
      op: 'setup',
      call: h.call,
      caller: { number: h.phone.number, node: this.d.node },
      callee: h.far,
      offer,
    });
  }

  /** Sends a signal to a node's call control (a half there, or an ad hoc conference it owns). */
  async send(node: string, msg: CallSignal): Promise<CallSignalReply> {
    try {
      // Signals carry SDP, whose crypto lines are SRTP keys: sealed or not sent.
      const raw = await this.d.bus.request(
        this.d.subjects.calls(node),
        encode(msg),
        this.d.model.config.cluster.request_timeout_ms * 4,
        { confidential: true },
      );
      const r = parseMessage(CallSignalReply, raw);
      return r.ok ? r.value : { ok: false, status: 500, reason: `malformed reply from ${node}` };
    } catch (err) {
      this.d.log.warn({ to: node, signal: msg.op, err: errorMessage(err) }, 'call signal not delivered');
      return { ok: false, status: 503, reason: `Service Unavailable (${node} unreachable)` };
    }
  }

  /** A call signal must come from the node of the call's other half (or, for device events, the device's node). */
  private fromPeer(m: BusMessage, s: CallSignal): boolean {
    if (s.op === 'setup') return claimedBy(m, s.caller.node);
    if (s.op === 'device_dtmf' || s.op === 'device_lost') {
      const a = this.d.mrm.get(s.allocation);
      return a === undefined || claimedBy(m, a.node);
    }
    if (s.op === 'conference_left' || s.op === 'audit') return claimedBy(m, s.node);
    if (s.op === 'conference_roll') return claimedBy(m, s.owner);
    const h = this.d.table.get(`${s.call}/${s.to}`);
    // A conference participant takes orders from the conference's owner.
    return h === undefined || claimedBy(m, h.conference?.owner ?? h.peerNode ?? this.d.node);
  }
}
