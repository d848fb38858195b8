// The media plane of one node: RTP ports from the node's range, the 20 ms
// clock, and the media sessions of the devices this node hosts (a relay for
// an MTP or a transcoder, a seat in a conference room, a stream of a music-
// on-hold source). Device processes ask it for sessions; nothing else does.
import type { LegQuality } from '../cluster/messages.ts';
import type { Logger } from 'pino';
import type { ResourceSpec } from '../config/model.ts';
import type { MediaRequest } from '../cluster/messages.ts';
import { MediaClock } from './clock.ts';
import { ConferenceRoom } from './conferenceRoom.ts';
import { MohSource } from './mohSource.ts';
import type { PortPool } from './portPool.ts';
import { RtpLeg, newLegCounters, type LatchPolicy, type LegCounters } from './rtpLeg.ts';
import { newSrtpKey } from './srtp.ts';
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
import type { SessionHost, SessionKinds, SharedMedia } from './sessionKind.ts';

export { MediaError, type Endpoint, type MediaEvent, type MediaSession } from './mediaPlane.ts';

/** A leg as the admin API and the call's record show it. */
const legView = (l: RtpLeg): LegQuality => ({
  local: `${l.address}:${l.port}`,
  remote: l.remote ? `${l.remote.address}:${l.remote.port}` : null,
  codec: l.codec ?? null,
  ...l.quality(),
});

/** every leg reports every 5 s (RFC 3550's minimum), the legs split in 50 slots */
const RTCP_INTERVAL_MS = 5000;
const RTCP_SLOTS = 50;

export interface MediaHostOptions {
  pool: PortPool;
  /** where relative audio source paths are found (the config file's directory) */
  mediaDir: string;
  log: Logger;
  /** the kinds of device whose sessions this host opens (src/devices/kinds.ts) */
  kinds: SessionKinds;
  /** RTCP CNAME of this node's streams */
  cname?: string;
  /** who a leg latches to (nodes.<n>.rtp.latch) */
  latch?: LatchPolicy;
}

export class MediaHost implements MediaPlane, SessionHost {
  readonly clock = new MediaClock();
  readonly mediaDir: string;
  /** what the sessions of one device share (conference rooms, music sources, prompts), by key */
  private readonly sharedMedia = new Map<string, SharedMedia>();
  private readonly pool: PortPool;
  private readonly log: Logger;
  private readonly kinds: SessionKinds;
  private readonly cname: string;
  private readonly latch: LatchPolicy;
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

  constructor(o: MediaHostOptions) {
    this.pool = o.pool;
    this.mediaDir = o.mediaDir;
    this.log = o.log;
    this.kinds = o.kinds;
    this.cname = o.cname ?? 'tandem';
    this.latch = o.latch ?? 'sdp';
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
    const kind = this.kinds[spec.type];
    if (!kind) throw new MediaError(`${spec.type} devices carry no media`);
    return kind.open(this, spec, req, onEvent);
  }

  shared<T extends SharedMedia>(key: string, make: () => T): T {
    let s = this.sharedMedia.get(key) as T | undefined;
    if (!s) this.sharedMedia.set(key, (s = make()));
    return s;
  }

  peekShared(key: string): SharedMedia | undefined {
    return this.sharedMedia.get(key);
  }

  dropShared(key: string): void {
    this.sharedMedia.delete(key);
    for (const k of [...this.links.keys()]) if (k.startsWith(`${key}|`)) this.links.delete(k);
  }

  roomChanged(device: string, room: string, open: boolean): void {
    this.onRoom?.(device, room, open);
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
    const r = this.sharedMedia.get(key);
    if (!(r instanceof ConferenceRoom)) throw new MediaError(`no conference ${room} open on ${device}`);
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

  async leg(codec: RtpLeg['codec']): Promise<RtpLeg> {
    return new RtpLeg(await this.pool.bind(), this.pool.address, codec, this.latch, this.counters);
  }

  /** recodec: the session's answer to a leg whose codec changed (relays rebuild their directions). */
  sessionOf(
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
      quality: async () => legs.map(legView),
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
    const view = legView;
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
      rooms: [...this.sharedMedia.values()].filter((m) => m instanceof ConferenceRoom).length,
      moh_sources: [...this.sharedMedia.values()].filter((m) => m instanceof MohSource).length,
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
    for (const m of this.sharedMedia.values()) m.close();
    this.sharedMedia.clear();
    this.clock.stop();
    this.log.debug('media host closed');
  }
}
