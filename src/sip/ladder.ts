// The SIP ladder of recent calls (what sngrep or RTMT's session trace show):
// the messages this node sent and received for each call's dialogs, with the
// time, direction and peer. Kept in memory and bounded: a few hundred recent
// Call-IDs not (yet) bound to a call, a few messages each, where strangers'
// and unauthenticated attempts churn, and the Call-IDs call control has bound
// to a call, which a flood cannot evict; all of it within a byte budget, the
// oldest dropped first. REGISTER and OPTIONS are not kept, nor anything of a
// Call-ID that a stranger (not a registered phone's address, not a trunk's
// peer) starts: those never become calls, and a flood's datagrams cost no
// more than a lookup here.
// Secrets are removed as a message is read out (SDES keys, Digest
// responses), so they never reach the API or the console; a message is kept
// as its bytes, and decoded and redacted only when someone reads its call's
// ladder (a busy node keeps thousands a second, and reads few).
import type { SipMessage } from './message.ts';
import type { SipPeer } from './peer.ts';

/** One message of a ladder. */
export interface LadderMessage {
  /** ms since the epoch */
  at: number;
  /** in: received by this node; out: sent by it */
  dir: 'in' | 'out';
  /** the other end: transport, address and port */
  peer: string;
  /** the request line or status line */
  first: string;
  call_id: string;
  /** the message as on the wire, secrets removed, at most MAX_TEXT characters */
  text: string;
}

/** Call-IDs seen but not bound to a call: strangers' attempts rotate through these */
const MAX_UNBOUND = 256;
/** Call-IDs bound to calls, oldest dropped first */
const MAX_BOUND = 2000;
/** calls whose Call-IDs are known (a call has one per half and node, more after a transfer) */
const MAX_CALLS = 2000;
const MAX_PER_CALL_ID = 100;
/** messages of a Call-ID not bound to a call (an attempt: INVITE, challenge, ACK, INVITE again) */
const MAX_PER_UNBOUND = 8;
const MAX_TEXT = 6000;
/** bytes of messages kept in all */
const BUDGET = 16 * 2 ** 20;

/** A message as kept: its text's bytes, not decoded yet. */
type Kept = Omit<LadderMessage, 'text'> & { wire: Buffer };

const NOT_KEPT = new Set(['REGISTER', 'OPTIONS']);

/** The message's text with what must not leave the node replaced. */
export function redactSip(text: string): string {
  return text
    .replace(/(a=crypto:\s*\d+\s+\S+\s+inline:)[^\s|]+/gi, '$1[redacted]')
    .replace(/(\bresponse\s*=\s*)("[^"]*"|[^\s,]+)/gi, '$1"[redacted]"')
    .replace(/(\bcnonce\s*=\s*)("[^"]*"|[^\s,]+)/gi, '$1"[redacted]"');
}

export class SipLadder {
  private readonly unbound = new Map<string, Kept[]>();
  private readonly bound = new Map<string, Kept[]>();
  /** our call id -> the SIP Call-IDs of its dialogs on this node */
  private readonly calls = new Map<string, Set<string>>();
  /** bytes of messages kept */
  private kept = 0;

  /** Keeps a message (sent or received), unless its method is not kept or it would start a Call-ID for a stranger (`known` false). */
  record(dir: 'in' | 'out', msg: SipMessage, peer: SipPeer, wire: Buffer, known: boolean): void {
    const callId = msg.headers.get('call-id');
    if (!callId) return;
    const method = msg.kind === 'request' ? msg.method : (msg.headers.get('cseq') ?? '').trim().split(/\s+/)[1];
    if (method === undefined || NOT_KEPT.has(method.toUpperCase())) return;
    let list = this.bound.get(callId);
    let max = MAX_PER_CALL_ID;
    if (!list) {
      max = MAX_PER_UNBOUND;
      list = this.unbound.get(callId);
      if (!list) {
        if (!known) return;
        list = [];
        this.unbound.set(callId, list);
        this.evict(this.unbound, MAX_UNBOUND);
      }
    }
    if (list.length >= max) return;
    // A copy: the transport may reuse what it read into.
    const kept = Buffer.from(wire.subarray(0, MAX_TEXT));
    list.push({
      at: Date.now(),
      dir,
      peer: `${peer.transport} ${peer.address}:${peer.port}`,
      first: (msg.kind === 'request' ? `${msg.method} ${msg.uri}` : `${msg.status} ${msg.reason}`).slice(0, 500),
      call_id: callId.slice(0, 500),
      wire: kept,
    });
    this.kept += kept.length;
    // Over budget: strangers' attempts go first, then the oldest calls.
    while (this.kept > BUDGET) {
      const from = this.unbound.size > 0 ? this.unbound : this.bound;
      if (from.size === 0) break;
      this.evict(from, from.size - 1);
    }
  }

  /** Binds a dialog's Call-ID to a call: its messages so far, and from now on, are the call's. */
  bind(call: string, callId: string): void {
    let ids = this.calls.get(call);
    if (!ids) {
      ids = new Set();
      this.calls.set(call, ids);
      for (const k of this.calls.keys()) {
        if (this.calls.size <= MAX_CALLS) break;
        this.calls.delete(k);
      }
    }
    ids.add(callId);
    if (!this.bound.has(callId)) {
      this.bound.set(callId, this.unbound.get(callId) ?? []);
      this.unbound.delete(callId);
      this.evict(this.bound, MAX_BOUND);
    }
  }

  /** Drops the oldest Call-IDs of a map past its bound (maps iterate in insertion order), counting what goes. */
  private evict(m: Map<string, Kept[]>, max: number): void {
    for (const [k, list] of m) {
      if (m.size <= max) return;
      for (const x of list) this.kept -= x.wire.length;
      m.delete(k);
    }
  }

  /** bytes of messages kept now */
  get size(): number {
    return this.kept;
  }

  /** The call's messages on this node, oldest first. */
  of(call: string): LadderMessage[] {
    const out: LadderMessage[] = [];
    for (const id of this.calls.get(call) ?? [])
      for (const { wire, ...m } of this.bound.get(id) ?? [])
        out.push({ ...m, text: redactSip(wire.toString('utf8')).slice(0, MAX_TEXT) });
    return out.sort((a, b) => a.at - b.at);
  }
}
