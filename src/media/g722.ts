// G.722 (ITU-T G.722, 64 kbit/s mode): sub-band ADPCM of 16 kHz audio. A
// transmit QMF splits each pair of samples into a low and a high band; the
// low band is coded with 6 bits, the high band with 2; the receive QMF
// recombines them. Written from the Recommendation's block diagram (blocks
// 1L-6L, 1H-5H, 4 for the adaptive predictors), integer arithmetic as in
// the reference, so it interoperates bit-exactly with other implementations.

const QMF = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const Q6 = [
  0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
  1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN = [
  0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
  0,
];
const ILP = [
  0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33,
  32, 0,
];
const WL = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42 = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB = [
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
  3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM4 = [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
const QM2 = [-7408, -1616, 7408, 1616];
const QM6 = [
  -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
  -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808,
  21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008,
  3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const IHN = [0, 1, 0];
const IHP = [0, 3, 2];
const WH = [0, -214, 798];
const RH2 = [2, 1, 2, 1];

const sat = (v: number) => (v > 32767 ? 32767 : Math.max(v, -32768));

/** The adaptive predictor and scale factor of one sub-band (block 4 and block 3). */
class Band {
  s = 0;
  sp = 0;
  sz = 0;
  r = [0, 0, 0];
  a = [0, 0, 0];
  ap = [0, 0, 0];
  p = [0, 0, 0];
  d = [0, 0, 0, 0, 0, 0, 0];
  b = [0, 0, 0, 0, 0, 0, 0];
  bp = [0, 0, 0, 0, 0, 0, 0];
  sg = [0, 0, 0, 0, 0, 0, 0];
  nb = 0;
  det: number;

  constructor(det: number) {
    this.det = det;
  }

  /** Blocks 3L/3H: log scale factor update and scale factor. */
  scale(step: number, max: number, shift: number): void {
    let nb = ((this.nb * 127) >> 7) + step;
    if (nb < 0) nb = 0;
    else if (nb > max) nb = max;
    this.nb = nb;
    const i = (nb >> 6) & 31;
    const sh = shift - (nb >> 11);
    const v = sh < 0 ? ILB[i]! << -sh : ILB[i]! >> sh;
    this.det = v << 2;
  }

  /** Block 4: reconstruction, pole and zero predictor update, prediction. */
  update(d: number): void {
    this.d[0] = d;
    this.r[0] = sat(this.s + d);
    this.p[0] = sat(this.sz + d);
    for (let i = 0; i < 3; i++) this.sg[i] = this.p[i]! >> 15;
    let wd1 = sat(this.a[1]! << 2);
    let wd2 = this.sg[0] === this.sg[1] ? -wd1 : wd1;
    if (wd2 > 32767) wd2 = 32767;
    let wd3 = (wd2 >> 7) + (this.sg[0] === this.sg[2] ? 128 : -128);
    wd3 += (this.a[2]! * 32512) >> 15;
    this.ap[2] = wd3 > 12288 ? 12288 : Math.max(wd3, -12288);
    this.sg[0] = this.p[0]! >> 15;
    this.sg[1] = this.p[1]! >> 15;
    wd1 = this.sg[0] === this.sg[1] ? 192 : -192;
    wd2 = (this.a[1]! * 32640) >> 15;
    this.ap[1] = sat(wd1 + wd2);
    wd3 = sat(15360 - this.ap[2]!);
    if (this.ap[1]! > wd3) this.ap[1] = wd3;
    else if (this.ap[1]! < -wd3) this.ap[1] = -wd3;
    wd1 = d === 0 ? 0 : 128;
    this.sg[0] = d >> 15;
    for (let i = 1; i < 7; i++) {
      this.sg[i] = this.d[i]! >> 15;
      wd2 = this.sg[i] === this.sg[0] ? wd1 : -wd1;
      wd3 = (this.b[i]! * 32640) >> 15;
      this.bp[i] = sat(wd2 + wd3);
    }
    for (let i = 6; i > 0; i--) {
      this.d[i] = this.d[i - 1]!;
      this.b[i] = this.bp[i]!;
    }
    for (let i = 2; i > 0; i--) {
      this.r[i] = this.r[i - 1]!;
      this.p[i] = this.p[i - 1]!;
      this.a[i] = this.ap[i]!;
    }
    wd1 = sat(this.r[1]! + this.r[1]!);
    wd1 = (this.a[1]! * wd1) >> 15;
    wd2 = sat(this.r[2]! + this.r[2]!);
    wd2 = (this.a[2]! * wd2) >> 15;
    this.sp = sat(wd1 + wd2);
    let sz = 0;
    for (let i = 6; i > 0; i--) {
      const w = sat(this.d[i]! + this.d[i]!);
      sz += (this.b[i]! * w) >> 15;
    }
    this.sz = sat(sz);
    this.s = sat(this.sp + this.sz);
  }
}

export class G722Encoder {
  private readonly low = new Band(32);
  private readonly high = new Band(8);
  private readonly x = new Int32Array(24);

  /** Encodes 16 kHz samples (an even count) into samples/2 bytes; returns the byte count. */
  encode(pcm: Int16Array, n: number, out: Uint8Array): number {
    let o = 0;
    const x = this.x;
    for (let j = 0; j + 1 < n; j += 2) {
      x.copyWithin(0, 2);
      x[22] = pcm[j]!;
      x[23] = pcm[j + 1]!;
      let sumodd = 0;
      let sumeven = 0;
      for (let i = 0; i < 12; i++) {
        sumodd += x[2 * i]! * QMF[i]!;
        sumeven += x[2 * i + 1]! * QMF[11 - i]!;
      }
      const xlow = (sumeven + sumodd) >> 14;
      const xhigh = (sumeven - sumodd) >> 14;
      // Low band: 6-bit adaptive quantiser (blocks 1L-4L).
      const L = this.low;
      const el = sat(xlow - L.s);
      let wd = el >= 0 ? el : -(el + 1);
      let i = 1;
      for (; i < 30; i++) if (wd < (Q6[i]! * L.det) >> 12) break;
      const ilow = el < 0 ? ILN[i]! : ILP[i]!;
      const ril = ilow >> 2;
      const dlow = (L.det * QM4[ril]!) >> 15;
      L.scale(WL[RL42[ril]!]!, 18432, 8);
      L.update(dlow);
      // High band: 2-bit adaptive quantiser (blocks 1H-4H).
      const H = this.high;
      const eh = sat(xhigh - H.s);
      wd = eh >= 0 ? eh : -(eh + 1);
      const mih = wd >= (564 * H.det) >> 12 ? 2 : 1;
      const ihigh = eh < 0 ? IHN[mih]! : IHP[mih]!;
      const dhigh = (H.det * QM2[ihigh]!) >> 15;
      H.scale(WH[RH2[ihigh]!]!, 22528, 10);
      H.update(dhigh);
      out[o++] = ((ihigh << 6) | ilow) & 0xff;
    }
    return o;
  }
}

export class G722Decoder {
  private readonly low = new Band(32);
  private readonly high = new Band(8);
  private readonly x = new Int32Array(24);

  /** Decodes bytes into 16 kHz samples (two per byte); returns the sample count. */
  decode(src: Uint8Array, off: number, len: number, out: Int16Array): number {
    let o = 0;
    const x = this.x;
    for (let j = 0; j < len && o + 1 < out.length; j++) {
      const code = src[off + j]!;
      const ilow6 = code & 0x3f;
      const ihigh = (code >> 6) & 0x03;
      const L = this.low;
      // Low band: reconstructed signal from the 6-bit code (block 5L), predictor fed with the 4-bit one.
      let rlow = L.s + ((L.det * QM6[ilow6]!) >> 15);
      rlow = rlow > 16383 ? 16383 : Math.max(rlow, -16384);
      const ril = ilow6 >> 2;
      const dlowt = (L.det * QM4[ril]!) >> 15;
      L.scale(WL[RL42[ril]!]!, 18432, 8);
      L.update(dlowt);
      const H = this.high;
      const dhigh = (H.det * QM2[ihigh]!) >> 15;
      let rhigh = dhigh + H.s;
      rhigh = rhigh > 16383 ? 16383 : Math.max(rhigh, -16384);
      H.scale(WH[RH2[ihigh]!]!, 22528, 10);
      H.update(dhigh);
      // Receive QMF.
      x.copyWithin(0, 2);
      x[22] = rlow + rhigh;
      x[23] = rlow - rhigh;
      let xout1 = 0;
      let xout2 = 0;
      for (let i = 0; i < 12; i++) {
        xout2 += x[2 * i]! * QMF[i]!;
        xout1 += x[2 * i + 1]! * QMF[11 - i]!;
      }
      out[o++] = sat(xout1 >> 11);
      out[o++] = sat(xout2 >> 11);
    }
    return o;
  }
}
