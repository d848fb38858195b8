// What a node's device processes need from its media plane, whether it runs
// in the node's own thread (MediaHost) or spread over worker threads, one
// clock and one share of the port range each (MediaWorkers).
import type { LegQuality, MediaRequest } from '../cluster/messages.ts';
import type { ResourceSpec } from '../config/model.ts';
import type { LegCounters } from './rtpLeg.ts';
import { TandemError } from '../errors.ts';

export interface Endpoint {
  address: string;
  port: number;
}

export type MediaEvent =
  | { type: 'dtmf'; fromLeg: 0 | 1; digit: string; durationMs: number }
  /** the session's media is gone (its worker died): the allocation must be re-homed */
  | { type: 'lost'; reason: string };

export interface MediaSession {
  endpoints(): Endpoint[];
  /** plays a digit into a leg (relays only) */
  playDigit?(leg: 0 | 1, digit: string, durationMs: number): void;
  /** new remote addresses (from an SDP answer) for the legs that have one */
  update(req: MediaRequest): void;
  /** annunciator: how long its prompt plays */
  durationMs?: number;
  /** what each leg has received and sent so far, and the far end's RTCP view (read before close for the call's record) */
  quality(): Promise<LegQuality[]>;
  close(): void;
}

export class MediaError extends TandemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** SRTP on a conference link: each side keeps its own sending key; `rx` is the peer's (once known). */
export interface LinkKeys {
  rx?: string | undefined;
}

export interface SessionView {
  device: string;
  allocation: string;
  legs: LegQuality[];
}

export interface MediaStatus {
  ports_in_use: number;
  rooms: number;
  moh_sources: number;
  sessions: number;
  clock: { ticks: number; late: number; maxLagMs: number; skipped: number };
  /** worker threads: each one's own figures */
  workers?: Array<Omit<MediaStatus, 'workers'> & { worker: number; alive: boolean }>;
}

export interface MediaPlane {
  /** Resolves once the plane can open sessions at once (its threads have loaded); a node offers its devices only then. */
  ready(): Promise<void>;
  session(spec: ResourceSpec, req: MediaRequest, onEvent?: (e: MediaEvent) => void): Promise<MediaSession>;
  /** conference cascade: the leg of a room towards the same room on bridge `peer` */
  linkRoom(
    device: string,
    room: string,
    peer: string,
    remote?: Endpoint,
    srtp?: LinkKeys,
  ): Promise<Endpoint & { key?: string }>;
  describe(): Promise<SessionView[]>;
  status(): Promise<MediaStatus>;
  /** packets refused by every leg (for /metrics) */
  readonly counters: LegCounters;
  /** told when a conference room opens (first participant) and closes (last one left) */
  onRoom: ((device: string, room: string, open: boolean) => void) | undefined;
  close(): void;
}
