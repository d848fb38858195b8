// A whole cluster in one process on the in-memory bus: the embedded default
// (`npm start`) and the harness of most tests.
import type { Logger } from 'pino';
import type { ClusterModel } from '../config/model.ts';
import { MemoryBus, MemoryHub } from '../cluster/memoryBus.ts';
import { AdminTokens } from '../admin/tokens.ts';
import { ephemeralKeys } from '../cluster/nodeKeys.ts';
import { CallManager } from './callManager.ts';

export interface EmbeddedOptions {
  /** which nodes to run (default: all in the config) */
  nodes?: string[];
  admin?: boolean;
  /** bind every admin API to a free port instead of the configured one */
  anyAdminPort?: boolean;
  /** run SIP on every node's configured address (default true) */
  sip?: boolean;
  /** benchmarks only: an unsigned in-memory bus (the cost of signing, measured against this) */
  unsigned?: boolean;
}

export class EmbeddedCluster {
  readonly hub = new MemoryHub();
  readonly nodes = new Map<string, CallManager>();
  readonly buses = new Map<string, MemoryBus>();
  /** one set of admin credentials for every node of the process */
  readonly adminTokens: AdminTokens | undefined;
  /** node keys made for this process: the in-memory bus is signed like NATS */
  readonly keys: ReturnType<typeof ephemeralKeys> | undefined;

  constructor(
    readonly model: ClusterModel,
    private readonly log: Logger,
    private readonly opts: EmbeddedOptions = {},
  ) {
    if (opts.admin ?? true) this.adminTokens = new AdminTokens(model);
    this.keys = opts.unsigned ? undefined : ephemeralKeys(model.nodes.keys());
  }

  async start(): Promise<void> {
    try {
      for (const name of this.opts.nodes ?? [...this.model.nodes.keys()]) await this.startNode(name);
    } catch (err) {
      // A node that cannot start: the ones already running stop too (no half-started cluster left behind).
      await this.stop();
      throw err;
    }
    await this.settled();
  }

  /** Starts (or restarts) one node on its own bus attached to the hub. */
  async startNode(name: string): Promise<CallManager> {
    const bus = new MemoryBus(this.hub);
    const cm = new CallManager({
      // Each node its own model, as in separate processes: an apply reaches each node as a change to take.
      model: this.model.copy(),
      node: name,
      bus,
      log: this.log,
      admin: this.opts.admin ?? true,
      sip: this.opts.sip ?? true,
      ...(this.adminTokens ? { adminTokens: this.adminTokens } : {}),
      ...(this.keys ? { keys: { identity: this.keys.identities.get(name)!, keyring: this.keys.keyring } } : {}),
      ...(this.opts.anyAdminPort ? { adminPort: 0 } : {}),
    });
    this.buses.set(name, bus);
    this.nodes.set(name, cm);
    await cm.start();
    return cm;
  }

  node(name: string): CallManager {
    const cm = this.nodes.get(name);
    if (!cm) throw new Error(`node ${name} is not running`);
    return cm;
  }

  /** Kills a node as a crash would: no goodbye, no unregistration. */
  async crash(name: string): Promise<void> {
    await this.node(name).stop(false);
    await this.buses.get(name)?.close();
    this.nodes.delete(name);
  }

  /** Resolves when every running node sees every other one up and every device registered. */
  async settled(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const running = [...this.nodes.values()];
    const expected = running.flatMap((cm) => [
      ...cm.model.resourcesOn(cm.name).map((r) => r.name),
      ...cm.model.phonesOn(cm.name).map((p) => p.number),
    ]);
    for (;;) {
      const ok = running.every(
        (cm) =>
          running.every((o) => cm.liveness.isUp(o.name)) && expected.every((d) => cm.devices.lookup(d).registered),
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error('embedded cluster did not settle: nodes or registrations missing');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((cm) => cm.stop(true)));
    for (const b of this.buses.values()) await b.close();
    this.nodes.clear();
  }
}
