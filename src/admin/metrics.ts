// Prometheus metrics of one call manager. Each node has its own registry so
// several nodes can share one process (the embedded cluster).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MEDIA_RESOURCE_TYPES } from '../config/schema.ts';
import type { MediaResourceProcess } from '../devices/mediaResourceProcess.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';

/** A count of refused input at one edge of the node, read at scrape time. */
export interface Refusal {
  edge: 'sip' | 'rtp' | 'bus' | 'admin';
  reason: string;
  count: number;
}

/** What the metrics of a node are read from (at scrape time, or as events). */
export interface MetricSources {
  node: string;
  mrm: MediaResourceManager;
  localResources: () => Iterable<MediaResourceProcess>;
  refusals?: () => Iterable<Refusal>;
  configVersion?: () => string;
  /** the other nodes as this node's liveness sees them */
  peers?: () => Iterable<{ node: string; up: boolean; state: string }>;
  /** this node hears no peer, or its bus link is down */
  isolated?: () => boolean;
  /** values read from the mapping table since start */
  mappingTableReads?: () => number;
  /** the nodes whose devices this node's mapping table holds (its own, its MRGLs') */
  mappingTableNodes?: () => number;
  /** the names (devices, phones, rooms) this node's mapping table holds */
  mappingTableEntries?: () => number;
  /** new calls at the SIP door: offered, admitted (the rest refused, in tandem_refused_total), and setups under way */
  callSetups?: () => { offered: number; admitted: number; inProgress: number };
  /** call halves this node runs, and phones whose binding it publishes */
  calls?: () => number;
  registeredPhones?: () => number;
  /** the config's MRGLs: their exhaustion counters exist (at 0) from the start */
  mrgls?: () => Iterable<string>;
  /** the trunks this node carries: calls through each now, and whether its registration holds (undefined: it does not register) */
  trunks?: () => Iterable<{
    trunk: string;
    calls: number;
    registered: boolean | undefined;
    peers: Array<{ peer: string; up: boolean }>;
    attempts?: { in: number; out: number };
    failures?: Record<string, number>;
  }>;
  /** the package's version, for tandem_build_info */
  version?: string;
}

export class NodeMetrics {
  readonly registry = new Registry();

  constructor({
    node,
    mrm,
    localResources,
    refusals = () => [],
    configVersion = () => 'unknown',
    peers = () => [],
    isolated = () => false,
    mappingTableReads = () => 0,
    mappingTableNodes = () => 0,
    mappingTableEntries = () => 0,
    callSetups = () => ({ offered: 0, admitted: 0, inProgress: 0 }),
    calls = () => 0,
    registeredPhones = () => 0,
    mrgls = () => [],
    trunks = () => [],
    version = 'unknown',
  }: MetricSources) {
    this.registry.setDefaultLabels({ node });
    // The process and Node.js: CPU, memory, event-loop lag, GC, handles (standard names, as dashboards expect them).
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'tandem_build_info',
      help: 'The Tandem and Node.js versions this node runs (labels; value 1)',
      labelNames: ['version', 'nodejs'] as const,
      registers: [this.registry],
    })
      .labels(version, process.version)
      .set(1);
    // A gauge without labels, read at scrape time.
    const readAtScrape = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    readAtScrape(
      'tandem_calls_in_progress',
      'Call halves this node runs now (a call across two nodes is a half on each)',
      calls,
    );
    readAtScrape(
      'tandem_phones_registered',
      'Phones registered at this node that it controls (their binding published in the mapping table)',
      registeredPhones,
    );
    new Counter({
      name: 'tandem_call_setups_total',
      help: 'New calls (fresh INVITEs) at the SIP door: offered, and admitted by admission control',
      labelNames: ['result'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const s = callSetups();
        this.inc({ result: 'offered' }, s.offered);
        this.inc({ result: 'admitted' }, s.admitted);
      },
    });
    readAtScrape(
      'tandem_call_setups_in_progress',
      "Call setups under way (INVITE admitted, the callee's node not yet calling it)",
      () => callSetups().inProgress,
    );
    new Gauge({
      name: 'tandem_peer_up',
      help: 'Whether this node sees another node up (1) or down (0), by liveness probes',
      labelNames: ['peer'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of peers()) this.set({ peer: p.node }, p.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tandem_peer_state',
      help: 'How this node sees another node: 1 for its state (up, unreachable: silent but not proven gone, down, unknown)',
      labelNames: ['peer', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of peers()) this.set({ peer: p.node, state: p.state }, 1);
      },
    });
    new Counter({
      name: 'tandem_mapping_table_reads_total',
      help: 'Values this node read from the mapping table (each checked against its signer) since it started',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(mappingTableReads());
      },
    });
    new Gauge({
      name: 'tandem_mapping_table_watched_nodes',
      help: 'Nodes whose devices this node holds in its mapping table (its own and those its MRGLs name; the rest are never read)',
      registers: [this.registry],
      collect() {
        this.set(mappingTableNodes());
      },
    });
    new Gauge({
      name: 'tandem_mapping_table_entries',
      help: 'Names (devices, phones, rooms) this node holds in its part of the mapping table',
      registers: [this.registry],
      collect() {
        this.set(mappingTableEntries());
      },
    });
    new Gauge({
      name: 'tandem_trunk_calls',
      help: 'Calls through each trunk this node carries, now',
      labelNames: ['trunk'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of trunks()) this.set({ trunk: t.trunk }, t.calls);
      },
    });
    new Counter({
      name: 'tandem_trunk_calls_total',
      help: 'Calls through each trunk this node carries since it started, by direction (in: from the far end)',
      labelNames: ['trunk', 'direction'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of trunks()) {
          this.inc({ trunk: t.trunk, direction: 'in' }, t.attempts?.in ?? 0);
          this.inc({ trunk: t.trunk, direction: 'out' }, t.attempts?.out ?? 0);
        }
      },
    });
    new Counter({
      name: 'tandem_trunk_failures_total',
      help: "Calls out through a trunk that failed, by reason: the far end's status (status_486), no_answer, no_peer_up, lines_full",
      labelNames: ['trunk', 'reason'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of trunks())
          for (const [reason, n] of Object.entries(t.failures ?? {})) this.inc({ trunk: t.trunk, reason }, n);
      },
    });
    new Gauge({
      name: 'tandem_trunk_peer_up',
      help: "Whether a trunk's peer answers this node's OPTIONS keep-alive (1) or not (0: calls skip it)",
      labelNames: ['trunk', 'peer'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of trunks()) for (const p of t.peers) this.set({ trunk: t.trunk, peer: p.peer }, p.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tandem_trunk_registered',
      help: "Whether this node's registration of a trunk at its carrier holds (1) or not (0); trunks that do not register have no series",
      labelNames: ['trunk'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of trunks()) if (t.registered !== undefined) this.set({ trunk: t.trunk }, t.registered ? 1 : 0);
      },
    });
    readAtScrape(
      'tandem_isolated',
      'This node hears no peer or has lost its bus link (1): it keeps its calls and convicts no one',
      () => (isolated() ? 1 : 0),
    );
    const exhausted = new Counter({
      name: 'tandem_mrgl_exhausted_total',
      help: 'Requests for which no device of the MRGL (nor of the default group) could give the resource',
      labelNames: ['mrgl', 'type'] as const,
      registers: [this.registry],
    });
    // (present at 0 from the start, so increase() and alerts see the first exhaustion)
    for (const m of mrgls()) for (const t of MEDIA_RESOURCE_TYPES) exhausted.labels(m, t).inc(0);
    new Gauge({
      name: 'tandem_config_info',
      help: 'The version of the configuration this node runs (label version; value 1)',
      labelNames: ['version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        this.labels(configVersion()).set(1);
      },
    });
    new Counter({
      name: 'tandem_refused_total',
      help: 'Input refused at an edge of this node (sip, rtp, bus, admin), by reason',
      labelNames: ['edge', 'reason'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of refusals()) this.inc({ edge: r.edge, reason: r.reason }, r.count);
      },
    });
    const allocations = new Counter({
      name: 'tandem_allocations_total',
      help: 'Allocation requests made by this node, by device type and result',
      labelNames: ['type', 'result'] as const,
      registers: [this.registry],
    });
    const walkSteps = new Histogram({
      name: 'tandem_allocation_walk_steps',
      help: 'Trace steps per allocation walk',
      buckets: [1, 2, 4, 8, 16, 64, 256],
      registers: [this.registry],
    });
    const lost = new Counter({
      name: 'tandem_allocations_lost_total',
      help: 'Allocations lost because the device node died or restarted',
      registers: [this.registry],
    });
    readAtScrape('tandem_allocations_held', 'Allocations currently held by this node', () => mrm.allocations().length);
    // Per-device gauges read the local device processes at scrape time.
    const perDevice = (name: string, help: string, value: (p: MediaResourceProcess) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['device', 'type'] as const,
        registers: [this.registry],
        collect() {
          // (reset: a device removed by tandem apply must not stay with its last value)
          this.reset();
          for (const p of localResources()) this.set({ device: p.name, type: p.spec.type }, value(p));
        },
      });
    // CUCM's per-resource counters by name: active, available, total, out of resources.
    perDevice('tandem_resource_active', 'Active allocations on a local media resource device', (p) => p.active);
    perDevice(
      'tandem_resource_available',
      'Units a local media resource device can still allocate (0 while draining)',
      (p) => p.available,
    );
    perDevice('tandem_resource_capacity', 'Capacity (total units) of a local media resource device', (p) => p.capacity);
    new Counter({
      name: 'tandem_resource_out_of_resources_total',
      help: 'Allocation requests a local media resource device refused for want of capacity',
      labelNames: ['device', 'type'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of localResources()) this.inc({ device: p.name, type: p.spec.type }, p.outOfResourcesCount);
      },
    });
    perDevice(
      'tandem_resource_mailbox_depth',
      'Messages waiting in a local device process mailbox',
      (p) => p.mailboxDepth,
    );
    mrm.on('allocated', (a) => {
      allocations.inc({ type: a.type, result: 'allocated' });
      walkSteps.observe(a.trace.steps.length);
    });
    mrm.on('failed', (t) => {
      allocations.inc({ type: t.type, result: 'failed' });
      exhausted.inc({ mrgl: t.mrgl ?? '(none)', type: t.type });
      walkSteps.observe(t.steps.length);
    });
    mrm.on('allocation_lost', () => lost.inc());
  }
}
