// RTCP (RFC 3550 §6): receiver statistics of one incoming stream (loss and
// interarrival jitter, appendix A.3 and A.8), the compound report a leg sends
// every few seconds (SR when it sends, else RR, plus SDES CNAME), and the
// report blocks of what arrives, which tell how our own stream fares.

export class ReceiverStats {
  received = 0;
  private base = -1;
  private maxSeq = 0;
  private cycles = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private transit: number | undefined;
  /** interarrival jitter, in timestamp units (times 16, as A.8 keeps it) */
  private jitter16 = 0;
  lastSsrc = 0;

  constructor(private readonly clockRate: number) {}

  packet(seq: number, timestamp: number, ssrc: number, nowMs: number): void {
    this.lastSsrc = ssrc;
    if (this.base < 0) {
      this.base = seq;
      this.maxSeq = seq;
    } else {
      const delta = (seq - this.maxSeq) & 0xffff;
      if (delta < 0x8000) {
        if (seq < this.maxSeq) this.cycles += 0x10000;
        this.maxSeq = seq;
      }
    }
    this.received++;
    const arrival = Math.round((nowMs * this.clockRate) / 1000);
    const transit = (arrival - timestamp) | 0;
    if (this.transit !== undefined) {
      const d = Math.abs((transit - this.transit) | 0);
      this.jitter16 += d - ((this.jitter16 + 8) >> 4);
    }
    this.transit = transit;
  }

  get expected(): number {
    return this.base < 0 ? 0 : this.cycles + this.maxSeq - this.base + 1;
  }

  get lost(): number {
    return Math.max(0, this.expected - this.received);
  }

  get jitterMs(): number {
    return (this.jitter16 >> 4) * (1000 / this.clockRate);
  }

  /** A report block (24 bytes) about this stream, written at buf[off]; resets the interval counters. */
  writeBlock(buf: Buffer, off: number): void {
    const expected = this.expected;
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction =
      expectedInterval <= 0 || lostInterval <= 0
        ? 0
        : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    buf.writeUInt32BE(this.lastSsrc >>> 0, off);
    buf.writeUInt32BE((((fraction & 0xff) << 24) | (Math.min(this.lost, 0x7fffff) & 0xffffff)) >>> 0, off + 4);
    buf.writeUInt32BE((this.cycles + this.maxSeq) >>> 0, off + 8);
    buf.writeUInt32BE((this.jitter16 >> 4) >>> 0, off + 12);
    buf.writeUInt32BE(0, off + 16); // LSR: we do not track the last SR
    buf.writeUInt32BE(0, off + 20); // DLSR
  }
}

export interface SenderInfo {
  rtpTimestamp: number;
  packets: number;
  octets: number;
}

/** A compound RTCP packet: SR (with sender info) or RR, one report block if we receive, SDES CNAME. */
export function buildReport(
  ssrc: number,
  cname: string,
  sender: SenderInfo | undefined,
  stats: ReceiverStats | undefined,
): Buffer {
  const blocks = stats && stats.received > 0 ? 1 : 0;
  const reportLen = (sender ? 28 : 8) + blocks * 24;
  const cnameBytes = Buffer.from(cname.slice(0, 255));
  const sdesBody = 4 + 2 + cnameBytes.length + 1; // ssrc, type+len, text, end
  const sdesLen = 4 + Math.ceil(sdesBody / 4) * 4;
  const buf = Buffer.alloc(reportLen + sdesLen);
  buf[0] = 0x80 | blocks;
  buf[1] = sender ? 200 : 201;
  buf.writeUInt16BE(reportLen / 4 - 1, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  let off = 8;
  if (sender) {
    const now = Date.now() / 1000 + 2208988800;
    buf.writeUInt32BE(Math.floor(now) >>> 0, 8);
    buf.writeUInt32BE(Math.floor((now % 1) * 2 ** 32) >>> 0, 12);
    buf.writeUInt32BE(sender.rtpTimestamp >>> 0, 16);
    buf.writeUInt32BE(sender.packets >>> 0, 20);
    buf.writeUInt32BE(sender.octets >>> 0, 24);
    off = 28;
  }
  if (blocks) stats!.writeBlock(buf, off);
  const s = reportLen;
  buf[s] = 0x81;
  buf[s + 1] = 202;
  buf.writeUInt16BE(sdesLen / 4 - 1, s + 2);
  buf.writeUInt32BE(ssrc >>> 0, s + 4);
  buf[s + 8] = 1; // CNAME
  buf[s + 9] = cnameBytes.length;
  cnameBytes.copy(buf, s + 10);
  return buf;
}

export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  jitter: number;
}

/** The report blocks in a compound RTCP packet (SR and RR); anything malformed ends the walk. */
export function readReportBlocks(buf: Buffer): ReportBlock[] {
  const out: ReportBlock[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    if (buf[off]! >> 6 !== 2) break;
    const count = buf[off]! & 0x1f;
    const type = buf[off + 1]!;
    const len = (buf.readUInt16BE(off + 2) + 1) * 4;
    if (off + len > buf.length) break;
    const first = type === 200 ? off + 28 : type === 201 ? off + 8 : -1;
    if (first >= 0) {
      for (let i = 0; i < count && first + (i + 1) * 24 <= off + len; i++) {
        const b = first + i * 24;
        out.push({
          ssrc: buf.readUInt32BE(b),
          fractionLost: buf[b + 4]! / 256,
          cumulativeLost: buf.readUInt32BE(b + 4) & 0xffffff,
          jitter: buf.readUInt32BE(b + 12),
        });
      }
    }
    off += len;
  }
  return out;
}
