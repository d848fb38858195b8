// The media plane of one node: RTP ports from the node's range, the 20 ms
// clock, and the media sessions of the devices this node hosts (a relay for
// an MTP or a transcoder, a seat in a conference room, a stream of a music-
// on-hold source). Device processes ask it for sessions; nothing else does.
import type { LegQuality } from '../cluster/messages.ts';
import { resolveMediaFile } from '../config/mediaFiles.ts';
import type { Logger } from 'pino';
import type { ResourceSpec } from '../config/model.ts';
import type { MediaRequest } from '../cluster/messages.ts';
import { MediaClock } from './clock.ts';
import { ConferenceRoom } from './conferenceRoom.ts';
import { MohSource } from './mohSource.ts';
import { Prompt } from './prompt.ts';
import type { PortPool } from './portPool.ts';
import { Relay } from './relay.ts';
import { RtpLeg, newLegCounters, type LatchPolicy, type LegCounters } from './rtpLeg.ts';
import { newSrtpKey } from './srtp.ts';
import { readWav8k } from './wav.ts';
import {
  MediaError,
  type Endpoint,
  type LinkKeys,
  type MediaEvent,
  type MediaPlane,
  type MediaSession,
  type MediaStatus,
  type SessionView,
} from './mediaPlane.ts';
import { errorMessage } from '../errors.ts';

export { MediaError, type Endpoint, type MediaEvent, type MediaSession } from './mediaPlane.ts';

/** every leg reports every 5 s (RFC 3550's minimum), the legs split in 50 slots */
const RTCP_INTERVAL_MS = 5000;
const RTCP_SLOTS = 50;

export class MediaHost implements MediaPlane {
  readonly clock = new MediaClock();
  private readonly rooms = new Map<string, ConferenceRoom>();
  private readonly moh = new Map<string, MohSource>();
  private readonly prompts = new Map<string, Prompt>();
  /** every open session with its legs: closing the host closes their sockets; RTCP and the admin API walk them */
  private readonly sessions = new Map<MediaSession, { device: string; allocation: string; legs: RtpLeg[] }>();
  private readonly rtcpTimer: NodeJS.Timeout;
  private rtcpSlot = 0;

  /** conference cascade: the leg of room `${device}/${room}` towards bridge `peer`, by `${device}/${room}|${peer}` */
  private readonly links = new Map<string, RtpLeg>();

  /** told when a conference room opens (first participant) and closes (last one left) */
  onRoom: ((device: string, room: string, open: boolean) => void) | undefined;

  /** packets from strangers dropped by every leg of this node */
  readonly counters: LegCounters = newLegCounters();

  constructor(
    private readonly pool: PortPool,
    /** where relative audio source paths are found (the config file's directory) */
    private readonly mediaDir: string,
    private readonly log: Logger,
    /** RTCP CNAME of this node's streams */
    private readonly cname = 'tandem',
    /** who a leg latches to (nodes.<n>.rtp.latch) */
    private readonly latch: LatchPolicy = 'sdp',
  ) {
    // Spread over the interval: one slot of the legs every 100 ms, so a
    // thousand reports never go out in one burst that delays the media clock.
    this.rtcpTimer = setInterval(() => {
      const slot = this.rtcpSlot;
      this.rtcpSlot = (slot + 1) % RTCP_SLOTS;
      let i = 0;
      for (const s of this.sessions.values()) {
        for (const leg of s.legs) {
          if (i++ % RTCP_SLOTS !== slot) continue;
          try {
            leg.report(this.cname);
          } catch (err) {
            this.log.warn({ device: s.device, err: errorMessage(err) }, 'RTCP report failed');
          }
        }
      }
    }, RTCP_INTERVAL_MS / RTCP_SLOTS);
    this.rtcpTimer.unref();
  }

  async session(
    spec: ResourceSpec,
    req: MediaRequest,
    onEvent: (e: MediaEvent) => void = () => undefined,
  ): Promise<MediaSession> {
    switch (spec.type) {
      case 'mtp':
      case 'transcoder': {
        if (req.legs.length !== 2) throw new MediaError(`a ${spec.type} session has two legs`);
        const [a, b] = await Promise.all(req.legs.map((l) => this.leg(l.codec)));
        const relay = new Relay(a!, b!, [req.legs[0]!.dtmf ?? 'rfc4733', req.legs[1]!.dtmf ?? 'rfc4733']);
        relay.onDtmf = (fromLeg, digit, durationMs) => onEvent({ type: 'dtmf', fromLeg, digit, durationMs });
        const session = this.wrap(
          spec,
          [a!, b!],
          req,
          () => relay.close(),
          () => relay.recodec(),
        );
        session.playDigit = (leg, digit, ms) => relay.playDigit(leg, digit, ms);
        return session;
      }
      case 'conference_bridge': {
        const key = `${spec.name}/${req.room ?? 'default'}`;
        let room = this.rooms.get(key);
        if (!room) {
          this.rooms.set(key, (room = new ConferenceRoom(key, this.clock)));
          if (req.room) this.onRoom?.(spec.name, req.room, true);
        }
        const leg = await this.leg(req.legs[0]!.codec);
        room.join(leg);
        const r = room;
        return this.wrap(spec, [leg], req, () => {
          r.leave(leg);
          // The last participant gone: the room and its links to other bridges close.
          if (r.participants === 0 && this.rooms.get(key) === r) {
            r.close();
            this.rooms.delete(key);
            for (const k of [...this.links.keys()]) if (k.startsWith(`${key}|`)) this.links.delete(k);
            if (req.room) this.onRoom?.(spec.name, req.room, false);
          }
        });
      }
      case 'moh': {
        const id = req.source ?? Math.min(...spec.audioSources.keys());
        const file = spec.audioSources.get(id);
        if (!file) throw new MediaError(`${spec.name} has no audio source ${id}`);
        const key = `${spec.name}/${id}`;
        let src = this.moh.get(key);
        if (!src) {
          let pcm: Int16Array;
          try {
            pcm = readWav8k(resolveMediaFile(this.mediaDir, file));
          } catch (err) {
            throw new MediaError(`${spec.name} audio source ${id}: ${errorMessage(err)}`, { cause: err });
          }
          this.moh.set(key, (src = new MohSource(key, pcm, this.clock)));
        }
        const leg = await this.leg(req.legs[0]!.codec);
        src.add(leg);
        const s = src;
        return this.wrap(spec, [leg], req, () => s.remove(leg));
      }
      case 'annunciator': {
        const name = req.prompt;
        const file = name ? spec.prompts.get(name) : undefined;
        if (!name || !file) throw new MediaError(`${spec.name} has no prompt ${name ?? '(none asked)'}`);
        const key = `${spec.name}/${name}`;
        let prompt = this.prompts.get(key);
        if (!prompt) {
          try {
            prompt = new Prompt(key, readWav8k(resolveMediaFile(this.mediaDir, file)), this.clock);
          } catch (err) {
            throw new MediaError(`${spec.name} prompt ${name}: ${errorMessage(err)}`, { cause: err });
          }
          this.prompts.set(key, prompt);
        }
        const leg = await this.leg(req.legs[0]!.codec);
        prompt.add(leg);
        const p = prompt;
        const session = this.wrap(spec, [leg], req, () => p.remove(leg));
        session.durationMs = p.durationMs;
        return session;
      }
      default:
        throw new MediaError(`${spec.type} devices carry no media yet`);
    }
  }

  /**
   * Conference cascade: the leg of `room` on `device` that exchanges mixes
   * with the same room on bridge `peer` (opened once per peer; it is a
   * participant of each room, so each hears the other's mix without its own
   * voice back). It latches only to `remote` (the peer's link leg).
   */
  async linkRoom(
    device: string,
    room: string,
    peer: string,
    remote?: Endpoint,
    srtp?: LinkKeys,
  ): Promise<Endpoint & { key?: string }> {
    const key = `${device}/${room}`;
    const r = this.rooms.get(key);
    if (!r) throw new MediaError(`no conference ${room} open on ${device}`);
    let leg = this.links.get(`${key}|${peer}`);
    if (!leg) {
      leg = new RtpLeg(await this.pool.bind(), this.pool.address, 'PCMU', 'sdp', this.counters);
      r.join(leg, true);
      this.links.set(`${key}|${peer}`, leg);
      this.log.info({ device, room, peer }, 'conference linked to another bridge');
    }
    // SRTP: the leg keeps the key it sends with for its life (made here once); it learns the peer's.
    if (srtp)
      leg.setSrtp({
        suite: 'AES_CM_128_HMAC_SHA1_80',
        tx: leg.srtpTxKey ?? newSrtpKey(),
        rx: srtp.rx ?? leg.srtpRxKey,
      });
    if (remote) leg.setRemote(remote);
    return { address: leg.address, port: leg.port, ...(leg.srtpTxKey ? { key: leg.srtpTxKey } : {}) };
  }

  private async leg(codec: RtpLeg['codec']): Promise<RtpLeg> {
    return new RtpLeg(await this.pool.bind(), this.pool.address, codec, this.latch, this.counters);
  }

  /** recodec: the session's answer to a leg whose codec changed (relays rebuild their directions). */
  private wrap(
    spec: ResourceSpec,
    legs: RtpLeg[],
    first: MediaRequest,
    close: () => void,
    recodec?: () => void,
  ): MediaSession {
    const update = (req: MediaRequest) => {
      let changed = false;
      req.legs.forEach((l, i) => {
        const leg = legs[i];
        if (!leg) return;
        if (l.remote) leg.setRemote(l.remote);
        if (l.telephone_event !== undefined) leg.eventPt = l.telephone_event;
        if (l.srtp) leg.setSrtp(l.srtp);
        if (recodec && l.codec !== undefined && leg.codec !== undefined && l.codec !== leg.codec) {
          leg.codec = l.codec;
          changed = true;
        }
      });
      if (changed) recodec!();
    };
    update(first);
    let closed = false;
    const session: MediaSession = {
      endpoints: () => legs.map((l) => ({ address: l.address, port: l.port })),
      update,
      close: () => {
        if (closed) return;
        closed = true;
        this.sessions.delete(session);
        close();
      },
    };
    this.sessions.set(session, { device: spec.name, allocation: first.allocation_id, legs });
    return session;
  }

  /** Every open session's legs with their reception quality and the far end's RTCP view (admin API). */
  async describe(): Promise<SessionView[]> {
    return this.describeNow();
  }

  describeNow(): SessionView[] {
    const view = (l: RtpLeg): LegQuality => ({
      local: `${l.address}:${l.port}`,
      remote: l.remote ? `${l.remote.address}:${l.remote.port}` : null,
      codec: l.codec ?? null,
      ...l.quality(),
    });
    return [
      ...[...this.sessions.values()].map((s) => ({
        device: s.device,
        allocation: s.allocation,
        legs: s.legs.map(view),
      })),
      // Conference links to other bridges: "link <room> -> <peer bridge>" in place of an allocation.
      ...[...this.links].map(([k, leg]) => {
        const [key, peer] = k.split('|') as [string, string];
        const slash = key.indexOf('/');
        return {
          device: key.slice(0, slash),
          allocation: `link ${key.slice(slash + 1)} -> ${peer}`,
          legs: [view(leg)],
        };
      }),
    ];
  }

  /** For the admin API and benchmarks. */
  async status(): Promise<MediaStatus> {
    return this.statusNow();
  }

  statusNow(): MediaStatus {
    return {
      ports_in_use: this.pool.inUse,
      rooms: this.rooms.size,
      moh_sources: this.moh.size,
      sessions: this.sessions.size,
      clock: { ...this.clock.stats },
    };
  }

  /** In the node's own thread: ready as soon as it exists. */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    clearInterval(this.rtcpTimer);
    for (const s of [...this.sessions.keys()]) s.close();
    for (const r of this.rooms.values()) r.close();
    for (const m of this.moh.values()) m.close();
    for (const p of this.prompts.values()) p.close();
    this.prompts.clear();
    this.rooms.clear();
    this.moh.clear();
    this.clock.stop();
    this.log.debug('media host closed');
  }
}
