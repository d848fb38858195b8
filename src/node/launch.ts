// Starts the call managers a process should run, on the bus the config names.
import type { Logger } from 'pino';
import type { ClusterModel } from '../config/model.ts';
import type { CallManager } from './callManager.ts';
import { EmbeddedCluster } from './embeddedCluster.ts';

export interface RunningNodes {
  nodes: CallManager[];
  busName: string;
  stop(): Promise<void>;
}

export async function startNodes(model: ClusterModel, log: Logger, only: string[] | undefined): Promise<RunningNodes> {
  for (const n of only ?? []) {
    if (!model.nodes.has(n)) throw new Error(`unknown node "${n}" (config has ${[...model.nodes.keys()].join(', ')})`);
  }
  const bus = model.config.cluster.bus;
  if (bus === 'memory') {
    const cluster = new EmbeddedCluster(model, log, only ? { nodes: only } : {});
    await cluster.start();
    return { nodes: [...cluster.nodes.values()], busName: 'memory', stop: () => cluster.stop() };
  }
  throw new Error(`bus ${bus} is not supported yet`);
}
