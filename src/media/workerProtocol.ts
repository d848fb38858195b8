// The messages between a node's main thread and its media workers (typed
// both ways; structured clone carries them, Maps included).
import type { MediaRequest } from '../cluster/messages.ts';
import type { ResourceSpec } from '../config/model.ts';
import type { Endpoint, LinkKeys, MediaEvent, MediaStatus, SessionView } from './mediaPlane.ts';
import type { LatchPolicy, LegCounters } from './rtpLeg.ts';

/** What every media thread of a node shares (its port share aside). */
export interface MediaThreadSettings {
  address: string;
  mediaDir: string;
  cname: string;
  latch: LatchPolicy;
}

/** One worker's start: the shared settings, its index and share of the ports. */
export interface WorkerSetup extends MediaThreadSettings {
  index: number;
  portMin: number;
  portMax: number;
  logLevel: string;
}

/** rid: the main thread waits for a reply with it (absent: fire and forget) */
export type ToWorker = { rid?: number } & (
  | { op: 'session'; id: number; spec: ResourceSpec; req: MediaRequest }
  | { op: 'update'; id: number; req: MediaRequest }
  | { op: 'digit'; id: number; leg: 0 | 1; digit: string; durationMs: number }
  | { op: 'close'; id: number }
  | { op: 'quality'; id: number }
  | {
      op: 'link';
      device: string;
      room: string;
      peer: string;
      remote?: Endpoint | undefined;
      srtp?: LinkKeys | undefined;
    }
  | { op: 'describe' }
  | { op: 'status' }
);

export interface SessionOpened {
  endpoints: Endpoint[];
  durationMs?: number;
  /** the session plays digits (a relay) */
  digits: boolean;
}

export type FromWorker =
  | { op: 'reply'; rid: number; ok: true; value: unknown }
  | { op: 'reply'; rid: number; ok: false; error: string }
  | { op: 'event'; id: number; event: MediaEvent }
  | { op: 'room'; device: string; room: string; open: boolean }
  | { op: 'counters'; counters: LegCounters }
  /** the worker has loaded its code and listens: sessions sent from now on are served without its start-up delay */
  | { op: 'ready' };

export type { MediaStatus, SessionView };
