// The media path of one call leg: the chain of devices between a phone and
// the far end (phone, device 0, device 1, ..., far end). Allocates devices
// through the MRM, opens their RTP legs on the nodes that control them,
// wires each to its neighbours, and rewrites SDP so the phone and the far
// end each talk to the nearest device. Call control decides what is needed;
// this module makes it so.
import type { SessionDescription } from 'sdp-transform';
import type { Logger } from 'pino';
import type { ClusterModel } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import { AllocationError, type Allocation, type MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import { MEDIA_CODECS } from '../media/codec.ts';
import { audioOf, type AudioInfo } from '../sip/sdp.ts';
import type { HalfCall, Insert, InsertRequest } from './halfCall.ts';
import { resourceEndpoint, type MediaEndpoint } from './mediaPlan.ts';
import { newSrtpKey } from './sdes.ts';
import { DEVICE_KINDS } from '../devices/kinds.ts';
import { errorMessage, TandemError } from '../errors.ts';

/** No device of the type could be allocated (the call fails with 503). */
export class NoResource extends TandemError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export const key = (r: { address: string; port: number }) => `${r.address}:${r.port}`;
/** What a device leg was last told of the party it faces: where it is, its telephone-event number and its SRTP key. */
const mark = (r: { address: string; port: number }, pt: number | undefined, srtp: string) =>
  `${key(r)}/${pt ?? ''}/${srtp}`;
/** The telephone_event field of a leg in a media request: the party's own number, when it has one. */
const eventPt = (pt: number | undefined) => (pt !== undefined && pt >= 96 && pt <= 127 ? { telephone_event: pt } : {});

export interface MediaPathDeps {
  model: ClusterModel;
  mrm: MediaResourceManager;
  log: Logger;
}

export class MediaPath {
  constructor(private readonly d: MediaPathDeps) {}

  /**
   * Music on hold for a phone the far end put on hold (user hold) or is
   * transferring (network hold), from the held phone's MRGL. Returns the
   * offer that moves the phone to the MOH stream, or undefined (no MOH device
   * free, or no media on its node: the phone just hears silence).
   */
  async startMusicOnHold(h: HalfCall, hold: 'user' | 'network' = 'user'): Promise<SessionDescription | undefined> {
    // What the held phone hears is the holding party's choice (its audio source for this kind of hold); where from, its own MRGL's.
    const holder = this.d.model.phones.get(h.far);
    const source = hold === 'network' ? holder?.networkHoldAudioSource : holder?.mohAudioSource;
    h.mohSource = source;
    const phoneSide = h.sdes.phone;
    try {
      h.moh = await this.d.mrm.allocate({
        phone: h.phone.number,
        type: 'moh',
        resolvedMrgl: h.mrgl,
        holder: { kind: 'call', call: h.call },
        requirement: {
          ...(source !== undefined ? { audio_source: source } : {}),
          ...(phoneSide.on ? { srtp: true } : {}),
        },
      });
    } catch (err) {
      this.d.log.warn(
        { call: h.call, phone: h.phone.number, err: errorMessage(err) },
        'phone on hold without music on hold',
      );
      return undefined;
    }
    const codec = h.phoneAudio?.codecs.find((c) => MEDIA_CODECS.includes(c)) ?? 'PCMU';
    try {
      const k: MediaEndpoint = { address: '', port: 0, key: phoneSide.newKey() };
      const r = await h.moh.media({
        legs: [{ codec, ...(h.phoneRemote ? { remote: h.phoneRemote } : {}), ...phoneSide.leg(k) }],
        ...(source !== undefined ? { source } : {}),
      });
      h.mohSide = { ...r.legs[0]!, key: k.key };
      this.d.log.info(
        {
          call: h.call,
          phone: h.phone.number,
          moh: h.moh.resource,
          device_node: h.moh.node,
          hold,
          audio_source: source ?? 'default',
          srtp: phoneSide.on,
        },
        'phone on hold: music on hold',
      );
      return h.own(h.mohSide, [codec], 'sendonly');
    } catch (err) {
      this.d.log.warn(
        { call: h.call, phone: h.phone.number, moh: h.moh.resource, err: errorMessage(err) },
        'music on hold allocated without media',
      );
      return undefined;
    }
  }

  /** Music on hold to this leg's phone stops: its device is released. Returns what was playing, if anything. */
  async stopMusicOnHold(h: HalfCall): Promise<Allocation | undefined> {
    const moh = h.moh;
    h.moh = undefined;
    if (moh) await moh.release();
    return moh;
  }

  /** The held phone answered the offer of music on hold: its stream goes where the phone says, under the key it gave. */
  mohAnswered(h: HalfCall, a: AudioInfo): void {
    h.notePhone(a);
    const moh = h.moh;
    if (moh)
      void moh
        .media({
          legs: [{ remote: { address: a.address, port: a.port }, ...(h.mohSide ? h.sdes.phone.leg(h.mohSide) : {}) }],
        })
        .catch(() => undefined);
  }

  /**
   * Allocates a device for this leg and opens its media: appended at the far
   * end of the leg's chain of devices (phone, device, device, ..., far end).
   * `codecs` are the codecs of its legs (undefined: pass payloads through).
   */
  async insert(
    h: HalfCall,
    type: MediaResourceType,
    why: string,
    ask: InsertRequest = {},
  ): Promise<Insert | undefined> {
    const ins = await this.openInsert(h, type, why, ask, h.inserts.length);
    if (ins) h.inserts.push(ins);
    return ins;
  }

  /**
   * Allocates a device for position `at` of the leg's chain of devices
   * (phone, device 0, device 1, ..., far end) and opens its media, wired to
   * its neighbours. `ask.codecs` are the codecs of its legs (undefined: pass
   * payloads through).
   */
  /** `reserved`: an allocation made beforehand for this place (a standby), used instead of allocating now. */
  async openInsert(
    h: HalfCall,
    type: MediaResourceType,
    why: string,
    ask: InsertRequest,
    at: number,
    reserved?: Allocation,
  ): Promise<Insert | undefined> {
    const { legs } = DEVICE_KINDS[type];
    const prev = at > 0 ? h.inserts[at - 1] : undefined;
    // Appending (at === length) or replacing a lost device (at < length).
    const replacing = at < h.inserts.length;
    const next = replacing ? h.inserts[at + 1] : undefined;
    // SRTP per leg: towards the phone (or the previous device) and towards the far end (or the next device), as that boundary or neighbour is.
    const { phone: phoneSide, far: farSide } = h.sdes;
    const key0 = prev ? (prev.farSide.key ? newSrtpKey() : undefined) : phoneSide.newKey();
    const key1 = legs === 1 ? undefined : next ? (next.phoneSide.key ? newSrtpKey() : undefined) : farSide.newKey();
    let allocation: Allocation;
    try {
      allocation =
        reserved ??
        (await this.d.mrm.allocate({
          phone: h.phone.number,
          type,
          resolvedMrgl: h.mrgl,
          requirement: { ...ask.requirement, ...(key0 || key1 ? { srtp: true } : {}) },
          preferred: ask.preferred,
          holder: { kind: 'call', call: h.call },
        }));
    } catch (err) {
      if (err instanceof AllocationError && ask.optional) {
        this.d.log.warn({ call: h.call, type, why, err: err.message }, 'going on without an optional media resource');
        return undefined;
      }
      if (err instanceof AllocationError)
        throw new NoResource(`no ${type} available for ${h.phone.number}: ${err.message}`, { cause: err });
      throw err;
    }
    const ins: Insert = {
      type,
      allocation,
      why,
      phoneSide: resourceEndpoint(this.d.model, allocation, 0),
      farSide: resourceEndpoint(this.d.model, allocation, 1),
      media: false,
      legs,
      pushed: {},
      ask,
      ...(ask.dtmf ? { dtmf: ask.dtmf } : {}),
    };
    const codecs = ask.codecs ?? [undefined, undefined];
    // Towards the phone: the phone itself, or the device before this one; towards the far end likewise.
    const inward = prev ? (prev.media ? prev.farSide : undefined) : h.phoneRemote;
    // An appended device learns the far end later (syncMedia); a replacement knows it now.
    const outward = next ? (next.media ? next.phoneSide : undefined) : replacing ? h.farRemote : undefined;
    // A link between two of our devices: both keys are ours (the far boundary's suite).
    const internal = (tx: string | undefined, rx: string | undefined) =>
      tx ? { srtp: { suite: farSide.suite, tx, ...(rx ? { rx } : {}) } } : {};
    const srtp0 = prev ? internal(key0, prev.farSide.key) : phoneSide.leg({ key: key0 });
    const srtp1 = next ? internal(key1, next.phoneSide.key) : farSide.leg({ key: key1 });
    try {
      const r = await allocation.media({
        legs:
          legs === 1
            ? [{ codec: codecs[0], remote: inward, ...srtp0 }]
            : [
                {
                  codec: codecs[0],
                  remote: inward,
                  ...(ask.dtmf ? { dtmf: ask.dtmf[0] } : {}),
                  ...eventPt(prev ? undefined : h.phoneEventPt),
                  ...srtp0,
                },
                {
                  codec: codecs[1],
                  remote: outward,
                  ...(ask.dtmf ? { dtmf: ask.dtmf[1] } : {}),
                  ...eventPt(next ? undefined : h.farEventPt),
                  ...srtp1,
                },
              ],
        ...(ask.room ? { room: ask.room } : {}),
      });
      ins.phoneSide = { ...r.legs[0]!, key: key0 };
      ins.farSide = r.legs[1] ? { ...r.legs[1], key: key1 } : ins.phoneSide;
      ins.media = true;
      if (!prev && h.phoneRemote) ins.pushed.phone = mark(h.phoneRemote, h.phoneEventPt, phoneSide.mark());
      if (!next && outward) ins.pushed.far = mark(outward, h.farEventPt, farSide.mark());
      ins.pushed.farCodec = codecs[1];
      if (prev?.media)
        await prev.allocation.media({ legs: [{}, { remote: ins.phoneSide, ...internal(prev.farSide.key, key0) }] });
      if (next?.media)
        await next.allocation.media({ legs: [{ remote: ins.farSide, ...internal(next.phoneSide.key, key1) }] });
    } catch (err) {
      // No media plane on the device's node: the allocation still stands, the call is silent through it.
      this.d.log.warn(
        { call: h.call, type, resource: allocation.resource, err: errorMessage(err) },
        'media resource allocated without media',
      );
    }
    this.d.log.info(
      {
        call: h.call,
        phone: h.phone.number,
        type,
        resource: allocation.resource,
        device_node: allocation.node,
        why,
        media: ins.media,
      },
      'media resource inserted',
    );
    return ins;
  }

  /** The SDP a phone must see for one from the far end; its devices learn where the far end is. */
  phoneView(h: HalfCall, sdp: SessionDescription): SessionDescription {
    const out = h.toPhone(sdp);
    void this.syncMedia(h);
    return out;
  }

  /** The SDP the far end must see for one from the phone; its devices learn where the phone is. */
  farView(h: HalfCall, sdp: SessionDescription): SessionDescription {
    const out = h.toFar(sdp);
    void this.syncMedia(h);
    return out;
  }

  /** Tells the first device where the phone is and the last where the far end is, when that changed. */
  async syncMedia(h: HalfCall): Promise<void> {
    const first = h.inserts[0];
    const last = h.inserts[h.inserts.length - 1];
    try {
      const { phone: phoneSide, far: farSide } = h.sdes;
      if (
        first?.media &&
        h.phoneRemote &&
        first.pushed.phone !== mark(h.phoneRemote, h.phoneEventPt, phoneSide.mark())
      ) {
        first.pushed.phone = mark(h.phoneRemote, h.phoneEventPt, phoneSide.mark());
        await first.allocation.media({
          legs: [{ remote: h.phoneRemote, ...eventPt(h.phoneEventPt), ...phoneSide.leg(first.phoneSide) }],
        });
      }
      if (
        last?.media &&
        last.legs === 2 &&
        h.farRemote &&
        last.pushed.far !== mark(h.farRemote, h.farEventPt, farSide.mark())
      ) {
        last.pushed.far = mark(h.farRemote, h.farEventPt, farSide.mark());
        await last.allocation.media({
          legs: [{}, { remote: h.farRemote, ...eventPt(h.farEventPt), ...farSide.leg(last.farSide) }],
        });
      }
      // A transcoder that offered the far end several codecs takes the one it answered with.
      const chosen =
        last?.farCodecs && h.lastFarSdp
          ? audioOf(h.lastFarSdp).codecs.find((c) => last.farCodecs!.includes(c))
          : undefined;
      if (
        last?.media &&
        last.legs === 2 &&
        chosen &&
        last.pushed.farCodec !== undefined &&
        chosen !== last.pushed.farCodec
      ) {
        last.pushed.farCodec = chosen;
        this.d.log.info(
          { call: h.call, resource: last.allocation.resource, codec: chosen },
          'transcoder far leg takes the codec the far end answered with',
        );
        await last.allocation.media({ legs: [{}, { codec: chosen }] });
      }
    } catch (err) {
      this.d.log.warn({ call: h.call, err: errorMessage(err) }, 'media update failed');
    }
  }
}
