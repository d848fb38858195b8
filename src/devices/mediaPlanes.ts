// Which media plane a node runs (nodes.<n>.rtp.workers): in its own thread,
// or over worker threads; either opens the sessions of the device kinds
// (kinds.ts), which is why this lives with the devices and not in media/.
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { NodeSpec } from '../config/model.ts';
import { MediaHost } from '../media/mediaHost.ts';
import type { MediaPlane } from '../media/mediaPlane.ts';
import { MediaWorkers } from '../media/mediaWorkers.ts';
import { PortPool } from '../media/portPool.ts';
import { DEVICE_KINDS } from './kinds.ts';

/** The worker thread's module: the built .js, or the .ts itself when run from source (tsx). */
export const MEDIA_WORKER_ENTRY = new URL(
  `./mediaWorker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

/** The media threads `workers` asks for on this machine (auto: one per core, one core left to signalling). */
export function mediaThreads(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, availableParallelism() - 1) : workers;
}

export function mediaPlaneFor(
  rtp: NonNullable<NodeSpec['rtp']>,
  mediaDir: string,
  log: Logger,
  cname: string,
): MediaPlane {
  const count = mediaThreads(rtp.workers);
  if (count === 0)
    return new MediaHost({
      pool: new PortPool(rtp.address, rtp.portMin, rtp.portMax),
      mediaDir,
      log,
      kinds: DEVICE_KINDS,
      cname,
      latch: rtp.latch,
    });
  return new MediaWorkers({
    entry: MEDIA_WORKER_ENTRY,
    kinds: DEVICE_KINDS,
    count,
    address: rtp.address,
    portMin: rtp.portMin,
    portMax: rtp.portMax,
    mediaDir,
    cname,
    latch: rtp.latch,
    log,
  });
}
