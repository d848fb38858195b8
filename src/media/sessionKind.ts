// How a kind of device opens its media sessions on a host. The host (one
// thread's clock and ports) offers legs, shared objects and the session
// wrapper; each kind (src/devices/<kind>.ts) says what one allocation's media
// is. The host never names a kind: a new one needs no change here.
import type { MediaRequest } from '../cluster/messages.ts';
import type { ResourceSpec } from '../config/model.ts';
import type { MediaClock } from './clock.ts';
import type { MediaEvent, MediaSession } from './mediaPlane.ts';
import type { RtpLeg } from './rtpLeg.ts';

/** Something the sessions of one device share (a conference room, a music source, a prompt): closed with the host. */
export interface SharedMedia {
  close(): void;
}

/** What a host offers the kinds that open sessions on it. */
export interface SessionHost {
  readonly clock: MediaClock;
  /** where relative media file paths (audio sources, prompts) are found */
  readonly mediaDir: string;
  /** a new RTP leg on a port of this host's range */
  leg(codec: RtpLeg['codec']): Promise<RtpLeg>;
  /**
   * The session of `legs`: the request's remotes, keys and event types are
   * applied to them now and on each update; `close` frees what the session
   * holds (once); `recodec` answers a leg whose codec changed.
   */
  sessionOf(
    spec: ResourceSpec,
    legs: RtpLeg[],
    req: MediaRequest,
    close: () => void,
    recodec?: () => void,
  ): MediaSession;
  /** the shared object under `key`, made by `make` on first use */
  shared<T extends SharedMedia>(key: string, make: () => T): T;
  /** the shared object under `key`, if one is open */
  peekShared(key: string): SharedMedia | undefined;
  /** forgets the shared object under `key` (its owner closed it), with the conference links of that room */
  dropShared(key: string): void;
  /** a conference room opened (its first participant) or closed (its last left): the node publishes or removes it */
  roomChanged(device: string, room: string, open: boolean): void;
}

/** The media side of a kind of device. */
export interface SessionKind {
  /** the legs of one allocation's session: two for a relay (MTP, transcoder), one for a seat or a listener */
  readonly legs: 1 | 2;
  /** sessions of one room share state: a plane on several threads keeps each room on one thread */
  readonly rooms: boolean;
  open(
    host: SessionHost,
    spec: ResourceSpec,
    req: MediaRequest,
    onEvent: (e: MediaEvent) => void,
  ): Promise<MediaSession>;
}

/** The kinds a host can open, by device type. */
export type SessionKinds = Readonly<Record<string, SessionKind>>;
