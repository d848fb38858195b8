// The clusters the benchmarks run on: three call managers in this process,
// on the memory bus, or on NATS (a real nats-server started for the run, one
// client connection per call manager as in production).
import type { Logger } from 'pino';
import type { Bus } from '../src/cluster/bus.ts';
import type { ClusterModel } from '../src/config/model.ts';
import type { CallManager } from '../src/node/callManager.ts';
import { startNodes } from '../src/node/launch.ts';
import { NatsServer } from '../test/helpers/natsServer.ts';
import { generateKeys } from '../src/cluster/nodeKeys.ts';

export interface BenchCluster {
  node(name: string): CallManager;
  bus(name: string): Bus;
  stop(): Promise<void>;
}

export interface BenchBus {
  /** the value of cluster.bus for the models of this run */
  url: string;
  start(model: ClusterModel, log: Logger): Promise<BenchCluster>;
  close(): Promise<void>;
}

export async function openBenchBus(kind: string, opts: { unsigned?: boolean } = {}): Promise<BenchBus> {
  let server: NatsServer | undefined;
  if (kind === 'nats') server = await NatsServer.start();
  else if (kind !== 'memory') throw new Error(`unknown bus ${kind} (memory or nats)`);
  return {
    url: server?.url ?? 'memory',
    async start(model, log) {
      // Node keys as in production (they sign every message; the server itself runs without users here).
      if (server && !opts.unsigned) generateKeys(model);
      const running = await startNodes(model, log, undefined, {
        admin: false,
        sip: false,
        ...(opts.unsigned ? { unsigned: true } : {}),
      });
      const byName = new Map(running.nodes.map((cm) => [cm.name, cm]));
      return { node: (n) => byName.get(n)!, bus: (n) => running.buses.get(n)!, stop: () => running.stop() };
    },
    close: async () => server?.stop(),
  };
}
