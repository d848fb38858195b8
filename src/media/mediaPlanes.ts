// Which media plane a node runs (nodes.<n>.rtp.workers): in its own thread,
// or over worker threads.
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { NodeSpec } from '../config/model.ts';
import { MediaHost } from './mediaHost.ts';
import type { MediaPlane } from './mediaPlane.ts';
import { MediaWorkers } from './mediaWorkers.ts';
import { PortPool } from './portPool.ts';

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
    return new MediaHost(new PortPool(rtp.address, rtp.portMin, rtp.portMax), mediaDir, log, cname, rtp.latch);
  return new MediaWorkers({
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
