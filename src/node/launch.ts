// Starts the call managers a process should run, on the bus the config names:
// the embedded memory bus (all nodes in this process share it), or NATS (each
// node has its own connection, as it would on its own machine).
import type { Logger } from 'pino';
import type { Bus } from '../cluster/bus.ts';
import type { ClusterModel } from '../config/model.ts';
import { KvRegistryStore } from '../cluster/kvRegistryStore.ts';
import { NatsBus, connectNats, hasCredentials, natsSettings } from '../cluster/natsBus.ts';
import { hasKeys, keysDir, loadKeys } from '../cluster/nodeKeys.ts';
import { bucketName, cdrStreamName, inboxPrefix } from '../cluster/natsPermissions.ts';
import { JetStreamArchive } from '../cluster/recordArchive.ts';
import { Subjects } from '../cluster/subjects.ts';
import { AdminTokens } from '../admin/tokens.ts';
import { CallManager } from './callManager.ts';
import { EmbeddedCluster } from './embeddedCluster.ts';
import { errorMessage, TandemError } from '../errors.ts';

export interface RunningNodes {
  nodes: CallManager[];
  /** each node's bus connection (benchmarks measure the raw round trip on them) */
  buses: Map<string, Bus>;
  busName: string;
  /** the admin token file this process uses (created on first start), when no tokens are configured */
  tokenFile: { path: string; created: boolean } | undefined;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  admin?: boolean;
  /** bind admin APIs to free ports (tests, benchmarks) */
  anyAdminPort?: boolean;
  /** run SIP (default true; benchmarks of the MRM alone turn it off) */
  sip?: boolean;
  /** connect to NATS without credentials and node keys (development only: anyone on the bus can speak for any node) */
  insecure?: boolean;
  /** benchmarks only: no node keys at all (the cost of signing, measured against this) */
  unsigned?: boolean;
}

export class InsecureBusError extends TandemError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export async function startNodes(
  model: ClusterModel,
  log: Logger,
  only: string[] | undefined,
  opts: LaunchOptions = {},
): Promise<RunningNodes> {
  for (const n of only ?? []) {
    if (!model.nodes.has(n)) throw new Error(`unknown node "${n}" (config has ${[...model.nodes.keys()].join(', ')})`);
  }
  const bus = model.config.cluster.bus;
  if (bus === 'memory') {
    const cluster = new EmbeddedCluster(model, log, { ...(only ? { nodes: only } : {}), ...opts });
    await cluster.start();
    const t = cluster.adminTokens;
    return {
      nodes: [...cluster.nodes.values()],
      buses: cluster.buses,
      busName: 'memory',
      tokenFile: t?.tokenFile ? { path: t.tokenFile, created: t.created } : undefined,
      stop: () => cluster.stop(),
    };
  }
  const settings = natsSettings(bus, model.config.cluster.nats);
  const nodes: CallManager[] = [];
  const buses = new Map<string, NatsBus>();
  const adminTokens = (opts.admin ?? true) ? new AdminTokens(model) : undefined;
  const stop = async () => {
    await Promise.all(nodes.map((cm) => cm.stop(true)));
    await Promise.all([...buses.values()].map((b) => b.close()));
  };
  try {
    for (const name of only ?? [...model.nodes.keys()]) {
      const nodeLog = log.child({ node: name, component: 'nats' });
      const keys = !opts.unsigned && hasKeys(model, name) ? loadKeys(model, name) : undefined;
      const own = natsSettings(model.nodes.get(name)!.bus, model.config.cluster.nats);
      const s = keys ? { ...own, seed: keys.identity.seed } : own;
      if (!hasCredentials(s) && !opts.insecure && !opts.unsigned) {
        throw new InsecureBusError(
          `refusing to join ${settings.servers.join(',')} without credentials: no node keys in ${keysDir(model)} ` +
            '(`tandem nats-setup -c CONFIG` makes them and a matching nats-server config) and no cluster.nats user/token; ' +
            '--insecure starts anyway (anyone who reaches NATS can then speak for any node)',
        );
      }
      if (!keys)
        nodeLog.warn(
          'bus messages and mapping table entries are NOT signed (no node keys): anyone who reaches NATS can speak for any node',
        );
      const nc = await connectNats(s, `tandem-${model.config.cluster.name}-${name}`, nodeLog, inboxPrefix(name)).catch(
        (err: unknown) => {
          throw new Error(`cannot connect to NATS at ${own.servers.join(',')}: ${errorMessage(err)}`, { cause: err });
        },
      );
      const natsBus = new NatsBus(nc, nodeLog, inboxPrefix(name));
      buses.set(name, natsBus);
      const cm = new CallManager({
        model,
        node: name,
        bus: natsBus,
        log,
        registryStore: (ctx) =>
          new KvRegistryStore(
            nc,
            bucketName(model),
            name,
            nodeLog,
            model.config.cluster.nats?.kv_replicas,
            ctx.signing,
          ),
        cdrArchive: new JetStreamArchive({
          nc,
          stream: cdrStreamName(model),
          prefix: new Subjects(model.config.cluster.name).cdrs,
          node: name,
          maxAgeMs: model.config.cdr.retention_days * 86_400_000,
          maxPerNode: model.config.cdr.max_records,
          replicas: model.config.cluster.nats?.kv_replicas,
          log: nodeLog.child({ component: 'cdr' }),
        }),
        keys,
        admin: opts.admin ?? true,
        sip: opts.sip ?? true,
        ...(adminTokens ? { adminTokens } : {}),
        ...(opts.anyAdminPort ? { adminPort: 0 } : {}),
      });
      await cm.start();
      nodes.push(cm);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const tokenFile = adminTokens?.tokenFile ? { path: adminTokens.tokenFile, created: adminTokens.created } : undefined;
  return { nodes, buses, busName: 'nats', tokenFile, stop };
}
