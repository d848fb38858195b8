// Wideband through devices: a 6 kHz tone (above G.711's 4 kHz band) must
// reach a wideband party through a transcoder (G.722 -> L16, G.722 -> Opus)
// and through a conference bridge (G.722 to G.722), over real UDP sockets.
// A narrowband party in the same room still gets a clean 8 kHz stream.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { ResourceSpec } from '../../src/config/model.ts';
import type { Codec, MediaResourceType } from '../../src/config/schema.ts';
import OpusScript from 'opusscript';
import { G722Decoder, G722Encoder } from '../../src/media/g722.ts';
import { decodeG711, encodeG711 } from '../../src/media/g711.ts';
import { DEVICE_KINDS } from '../../src/devices/kinds.ts';
import { MediaHost } from '../../src/media/mediaHost.ts';
import { PortPool } from '../../src/media/portPool.ts';
import { RTP_FORMAT } from '../../src/media/rtpFormats.ts';
import { silentLogger } from '../../src/log.ts';
import { toneShare } from '../helpers/audio.ts';

const spec = (type: MediaResourceType): ResourceSpec => ({
  name: `W_${type}`,
  type,
  node: 'w',
  capacity: 10,
  location: undefined,
  codecs: [],
  audioSources: new Map(),
  prompts: new Map(),
  dtmf: [],
  srtp: true,
});

/**
 * A party's own codec at its native rate, independent of the device's codec
 * layer (codec.ts) under test: G.722 (the bit-exact coder), L16 by hand,
 * Opus by libopus at 16 kHz, PCMU by table at 8 kHz.
 */
interface PartyCodec {
  rate: number;
  pt: number;
  ts: number;
  encode(pcm: Int16Array, out: Buffer): number;
  decode(p: Buffer, out: Int16Array): number;
  close(): void;
}

function partyCodec(codec: Codec): PartyCodec {
  const pt = RTP_FORMAT[codec].payloadType;
  if (codec === 'G722') {
    const [enc, dec] = [new G722Encoder(), new G722Decoder()];
    return {
      rate: 16000,
      pt,
      ts: 160,
      encode: (pcm, out) => enc.encode(pcm, 320, out),
      decode: (p, out) => dec.decode(p, 12, p.length - 12, out),
      close: () => undefined,
    };
  }
  if (codec === 'L16') {
    return {
      rate: 16000,
      pt,
      ts: 320,
      encode: (pcm, out) => {
        for (let i = 0; i < 320; i++) out.writeInt16BE(pcm[i]!, i * 2);
        return 640;
      },
      decode: (p, out) => {
        const n = (p.length - 12) >> 1;
        for (let i = 0; i < n; i++) out[i] = p.readInt16BE(12 + i * 2);
        return n;
      },
      close: () => undefined,
    };
  }
  if (codec === 'OPUS') {
    const opus = new OpusScript(16000, 1, OpusScript.Application.AUDIO);
    const bytes = Buffer.alloc(640);
    return {
      rate: 16000,
      pt,
      ts: 960,
      encode: (pcm, out) => {
        for (let i = 0; i < 320; i++) bytes.writeInt16LE(pcm[i]!, i * 2);
        const e = opus.encode(bytes, 320);
        e.copy(out);
        return e.length;
      },
      decode: (p, out) => {
        const d = opus.decode(p.subarray(12));
        const n = d.length >> 1;
        for (let i = 0; i < n; i++) out[i] = d.readInt16LE(i * 2);
        return n;
      },
      close: () => opus.delete(),
    };
  }
  return {
    rate: 8000,
    pt,
    ts: 160,
    encode: (pcm, out) => {
      encodeG711('PCMU', pcm, out, 160);
      return 160;
    },
    decode: (p, out) => {
      decodeG711('PCMU', p, out, p.length - 12, 12);
      return p.length - 12;
    },
    close: () => undefined,
  };
}

/** A party: a UDP socket that sends a tone in `codec` and decodes what it gets. */
class Party {
  readonly heard: number[] = [];
  private readonly c: PartyCodec;
  private constructor(
    readonly sock: Socket,
    readonly codec: Codec,
  ) {
    this.c = partyCodec(codec);
    const pcm = new Int16Array(320 * 6);
    sock.on('message', (m) => {
      if ((m[1]! & 0x7f) !== this.c.pt) return;
      const n = this.c.decode(m, pcm);
      for (let i = 0; i < n; i++) this.heard.push(pcm[i]!);
    });
  }

  get rate(): number {
    return this.c.rate;
  }

  static async open(codec: Codec): Promise<Party> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new Party(s, codec);
  }

  /** 20 ms frames of a `hz` tone (silence with hz 0) to `port`, for `frames` frames. */
  async send(port: number, hz: number, frames: number): Promise<void> {
    const per = this.c.rate / 50;
    const pcm = new Int16Array(per);
    const out = Buffer.alloc(1500);
    for (let f = 0; f < frames; f++) {
      for (let i = 0; i < per; i++)
        pcm[i] = hz ? Math.round(9000 * Math.sin((2 * Math.PI * hz * (f * per + i)) / this.c.rate)) : 0;
      const len = this.c.encode(pcm, out);
      const pkt = Buffer.alloc(12 + len);
      pkt[0] = 0x80;
      pkt[1] = this.c.pt;
      pkt.writeUInt16BE(f, 2);
      pkt.writeUInt32BE(f * this.c.ts, 4);
      pkt.writeUInt32BE(0xabc, 8);
      out.copy(pkt, 12, 0, len);
      this.sock.send(pkt, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The last `ms` of what it heard (at its rate). */
  last(ms: number): Int16Array {
    return Int16Array.from(this.heard.slice((-this.c.rate / 1000) * ms));
  }

  close(): void {
    this.sock.close();
    this.c.close();
  }
}

describe('wideband through devices (16 kHz inside)', () => {
  let host: MediaHost;
  const parties: Party[] = [];
  const party = async (c: Codec) => {
    const p = await Party.open(c);
    parties.push(p);
    return p;
  };
  before(() => {
    host = new MediaHost({
      pool: new PortPool('127.0.0.1', 52000, 52099),
      mediaDir: process.cwd(),
      log: silentLogger(),
      kinds: DEVICE_KINDS,
      cname: 'tandem-wide',
      latch: 'first_source',
    });
  });
  after(() => {
    for (const p of parties) p.close();
    host.close();
  });

  for (const far of ['L16', 'OPUS'] as const) {
    it(`a transcoder G.722 -> ${far} passes a 6 kHz tone`, async () => {
      const s = await host.session(spec('transcoder'), {
        op: 'media',
        allocation_id: `t-${far}`,
        legs: [{ codec: 'G722' }, { codec: far }],
      });
      const [a, b] = s.endpoints();
      const [pa, pb] = [await party('G722'), await party(far)];
      // Latch the far leg (first source), then the tone one way.
      await pb.send(b!.port, 0, 2);
      await pa.send(a!.port, 6000, 40);
      await new Promise((r) => setTimeout(r, 100));
      const heard = pb.last(400);
      assert.ok(
        toneShare(heard, 16000, 6000) > 0.5,
        `${far} party hears 6 kHz (share ${toneShare(heard, 16000, 6000).toFixed(3)})`,
      );
      s.close();
    });
  }

  it('a conference of two G.722 phones passes 6 kHz between them; a PCMU participant gets the narrowband mix', async () => {
    const seat = async (codec: Codec, i: number) => {
      const s = await host.session(spec('conference_bridge'), {
        op: 'media',
        allocation_id: `c${i}`,
        legs: [{ codec }],
        room: 'wide',
      });
      return { s, port: s.endpoints()[0]!.port, p: await party(codec) };
    };
    const [x, y, z] = [await seat('G722', 1), await seat('G722', 2), await seat('PCMU', 3)];
    await Promise.all([x.p.send(x.port, 6000, 50), y.p.send(y.port, 5000, 50), z.p.send(z.port, 1000, 50)]);
    await new Promise((r) => setTimeout(r, 100));
    const hx = x.p.last(400);
    const hy = y.p.last(400);
    assert.ok(toneShare(hx, 16000, 5000) > 0.2, `X hears Y's 5 kHz (${toneShare(hx, 16000, 5000).toFixed(3)})`);
    assert.ok(toneShare(hy, 16000, 6000) > 0.2, `Y hears X's 6 kHz (${toneShare(hy, 16000, 6000).toFixed(3)})`);
    assert.ok(toneShare(hx, 16000, 6000) < 0.02, 'X does not hear itself');
    // The PCMU participant: only what fits in 4 kHz (the 1 kHz of its own is not sent back either).
    const hz = z.p.last(400);
    assert.ok(hz.length > 0, 'the PCMU participant gets audio');
    assert.ok(toneShare(hz, 8000, 1000) < 0.02, 'Z does not hear itself');
    for (const v of [x, y, z]) v.s.close();
  });
});
