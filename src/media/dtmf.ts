// DTMF as RFC 4733 telephone-events: reading the end of an event from RTP
// packets, and writing the packets of one event. Digits 0-9 * # A-D are
// events 0-15.
import type { RtpLeg } from './rtpLeg.ts';

const DIGITS = '0123456789*#ABCD';

export function digitOf(event: number): string | undefined {
  return DIGITS[event];
}

export function eventOf(digit: string): number | undefined {
  const i = DIGITS.indexOf(digit.toUpperCase());
  return i < 0 ? undefined : i;
}

/** Watches one stream's telephone-events; reports each event once, when it ends. */
export class DtmfDetector {
  private lastEnded: number | undefined;

  /** The payload of a telephone-event packet; returns the finished digit and its duration (ms), if this packet ends one. */
  packet(
    payload: Buffer,
    off: number,
    len: number,
    timestamp: number,
  ): { digit: string; durationMs: number } | undefined {
    if (len < 4) return undefined;
    const end = (payload[off + 1]! & 0x80) !== 0;
    if (!end || this.lastEnded === timestamp) return undefined; // end packets are sent three times
    this.lastEnded = timestamp;
    const digit = digitOf(payload[off]!);
    const duration = (payload[off + 2]! << 8) | payload[off + 3]!;
    return digit ? { digit, durationMs: Math.round(duration / 8) } : undefined;
  }
}

/** Sends one digit on a leg as RFC 4733 packets: a start with marker, updates every 20 ms, three end packets. */
export function sendDigit(leg: RtpLeg, digit: string, durationMs: number): void {
  const event = eventOf(digit);
  if (event === undefined) return;
  const total = Math.max(40, Math.min(durationMs, 2000)) * 8;
  const payload = Buffer.alloc(4);
  let sent = 0;
  const step = () => {
    sent = Math.min(total, sent + 160);
    const end = sent >= total;
    payload[0] = event;
    payload[1] = (end ? 0x80 : 0) | 10; // volume -10 dBm0
    payload.writeUInt16BE(sent, 2);
    // One timestamp for every packet of the event (steps of 0); the marker on the first.
    for (let i = 0; i < (end ? 3 : 1); i++) leg.sendEvent(payload, 0, 4, sent === 160 && i === 0);
    if (!end) setTimeout(step, 20);
  };
  step();
}
