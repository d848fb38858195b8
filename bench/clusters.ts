// The clusters the benchmarks run on: three call managers in this process,
// on the memory bus or on NATS.
import type { Logger } from 'pino';
import type { Bus } from '../src/cluster/bus.ts';
import type { ClusterModel } from '../src/config/model.ts';
import type { CallManager } from '../src/node/callManager.ts';
import { EmbeddedCluster } from '../src/node/embeddedCluster.ts';

export interface BenchCluster {
  node(name: string): CallManager;
  bus(name: string): Bus;
  stop(): Promise<void>;
}

export function benchClusterFactory(bus: string): (model: ClusterModel, log: Logger) => Promise<BenchCluster> {
  if (bus === 'memory') {
    return async (model, log) => {
      const c = new EmbeddedCluster(model, log, { admin: false });
      await c.start();
      return { node: (n) => c.node(n), bus: (n) => c.buses.get(n)!, stop: () => c.stop() };
    };
  }
  throw new Error(`unknown bus ${bus}`);
}
