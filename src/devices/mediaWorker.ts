// One media worker thread (started by media/mediaWorkers.ts from the path
// devices/mediaPlanes.ts gives it): a MediaHost of its own (its clock, its share of
// the node's RTP ports) driven by messages from MediaWorkers in the node's
// main thread. Sessions are named by the ids the main thread gives them.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors.ts';
import { createLogger } from '../log.ts';
import { MediaHost } from '../media/mediaHost.ts';
import type { MediaSession } from '../media/mediaPlane.ts';
import { PortPool } from '../media/portPool.ts';
import type { FromWorker, ToWorker, WorkerSetup } from '../media/workerProtocol.ts';
import { DEVICE_KINDS } from './kinds.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const log = createLogger({ level: setup.logLevel }).child({ component: 'media', worker: setup.index });
const host = new MediaHost({
  pool: new PortPool(setup.address, setup.portMin, setup.portMax),
  mediaDir: setup.mediaDir,
  log,
  kinds: DEVICE_KINDS,
  cname: setup.cname,
  latch: setup.latch,
});
const sessions = new Map<number, MediaSession>();
const send = (m: FromWorker) => port.postMessage(m);
host.onRoom = (device, room, open) => send({ op: 'room', device, room, open });

// What the node's metrics read: sent with every answer and once a second.
const counters = () => send({ op: 'counters', counters: { ...host.counters } });
setInterval(counters, 1000).unref();

async function handle(m: ToWorker): Promise<unknown> {
  switch (m.op) {
    case 'session': {
      const s = await host.session(m.spec, m.req, (event) => send({ op: 'event', id: m.id, event }));
      sessions.set(m.id, s);
      return {
        endpoints: s.endpoints(),
        ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
        digits: s.playDigit !== undefined,
      };
    }
    case 'update':
      sessions.get(m.id)?.update(m.req);
      return undefined;
    case 'digit':
      sessions.get(m.id)?.playDigit?.(m.leg, m.digit, m.durationMs);
      return undefined;
    case 'quality':
      return (await sessions.get(m.id)?.quality()) ?? [];
    case 'close':
      sessions.get(m.id)?.close();
      sessions.delete(m.id);
      return undefined;
    case 'link':
      return host.linkRoom(m.device, m.room, m.peer, m.remote, m.srtp);
    case 'describe':
      return host.describeNow();
    case 'status':
      return host.statusNow();
  }
}

port.on('message', (m: ToWorker) => {
  handle(m).then(
    (value) => {
      if (m.rid !== undefined) send({ op: 'reply', rid: m.rid, ok: true, value });
    },
    (err: unknown) => {
      if (m.rid !== undefined) send({ op: 'reply', rid: m.rid, ok: false, error: errorMessage(err) });
      else log.warn({ op: m.op, err: errorMessage(err) }, 'media worker request failed');
    },
  );
});
send({ op: 'ready' });
