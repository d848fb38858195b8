// DTMF between phones whose methods differ: digits a phone sends as SIP
// INFO go into its leg's MTP as RFC 4733 telephone-events (or to the other
// half of the call); digits an MTP heard as telephone-events for a SIP INFO
// party arrive from the device's node and leave as INFO.
import type { Logger } from 'pino';
import type { Allocation } from '../mrm/allocation.ts';
import type { SipRequest } from '../sip/message.ts';
import type { SipStack } from '../sip/transactions.ts';
import type { HalfCall } from './halfCall.ts';
import type { CallSignal, CallSignalReply, OutgoingSignal } from './signals.ts';
import { errorMessage } from '../errors.ts';

export interface DtmfRelayDeps {
  stack: SipStack;
  log: Logger;
  /** a signal to the other half of the call */
  signal(h: HalfCall, s: OutgoingSignal): Promise<CallSignalReply>;
}

export class DtmfRelay {
  constructor(private readonly d: DtmfRelayDeps) {}

  /** A digit the phone sent as SIP INFO: into this leg's MTP towards an RFC 4733 far end, else to the other half. */
  fromPhone(h: HalfCall, digit: string, durationMs: number): void {
    const mtp = h.inserts.find(
      (i) => i.type === 'mtp' && i.media && i.dtmf?.[0] === 'sip_info' && i.dtmf[1] === 'rfc4733',
    );
    if (mtp) return void this.playDigit(h, mtp.allocation, 1, digit, durationMs);
    if (h.peerNode) void this.d.signal(h, { op: 'dtmf', call: h.call, digit, duration_ms: durationMs });
  }

  /** A relay of this node's call heard a digit for a SIP INFO party. */
  async fromDevice(s: Extract<CallSignal, { op: 'device_dtmf' }>, halves: HalfCall[]): Promise<CallSignalReply> {
    const h = halves.find((x) => x.inserts.some((i) => i.allocation.id === s.allocation));
    if (!h) return { ok: false, status: 481, reason: 'no call holds that allocation' };
    this.d.log.info(
      { call: h.call, digit: s.digit, from: s.from_leg === 0 ? h.phone.number : h.far },
      'DTMF from RFC 4733 for a SIP INFO party',
    );
    // From the phone's side: for the far end. From the far side: for our phone.
    if (s.from_leg === 0) {
      if (h.peerNode) await this.d.signal(h, { op: 'dtmf', call: h.call, digit: s.digit, duration_ms: s.duration_ms });
    } else this.deliver(h, s.digit, s.duration_ms);
    return { ok: true };
  }

  /** A digit for this leg's phone: as RFC 4733 through its MTP, or as SIP INFO. */
  deliver(h: HalfCall, digit: string, durationMs: number): void {
    const mtp = h.inserts.find((i) => i.type === 'mtp' && i.media && i.dtmf?.[0] === 'rfc4733');
    if (mtp && h.phone.dtmf.includes('rfc4733')) return void this.playDigit(h, mtp.allocation, 0, digit, durationMs);
    if (!h.phone.dtmf.includes('sip_info') || !h.dialog || h.state !== 'up') {
      this.d.log.warn({ call: h.call, phone: h.phone.number, digit }, 'DTMF digit with no way to reach the phone');
      return;
    }
    const dialog = h.dialog;
    const body = { type: 'application/dtmf-relay', data: Buffer.from(`Signal=${digit}\r\nDuration=${durationMs}\r\n`) };
    this.d.stack.request(dialog.request('INFO', body), dialog.peer, () => undefined);
  }

  private playDigit(h: HalfCall, allocation: Allocation, leg: 0 | 1, digit: string, durationMs: number): void {
    allocation
      .dtmf(leg, digit, durationMs)
      .catch((err: unknown) => this.d.log.warn({ call: h.call, err: errorMessage(err) }, 'DTMF not played'));
  }
}

/** A digit in an INFO body: application/dtmf-relay (Signal=, Duration=) or application/dtmf. */
export function dtmfFromInfo(req: SipRequest): { digit: string; durationMs: number } | undefined {
  const type = req.headers.get('content-type')?.toLowerCase() ?? '';
  const text = req.body.toString('utf8');
  let digit: string | undefined;
  let durationMs = 160;
  if (type.startsWith('application/dtmf-relay')) {
    digit = /^\s*Signal\s*=\s*([0-9*#A-Da-d])\s*$/m.exec(text)?.[1];
    const d = /^\s*Duration\s*=\s*(\d{1,5})\s*$/m.exec(text)?.[1];
    if (d) durationMs = Number(d);
  } else if (type.startsWith('application/dtmf')) {
    digit = /^\s*([0-9*#A-Da-d])\s*$/.exec(text)?.[1];
  }
  return digit ? { digit: digit.toUpperCase(), durationMs: Math.min(5000, Math.max(20, durationMs)) } : undefined;
}
