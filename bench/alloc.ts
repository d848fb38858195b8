// npm run bench:alloc [-- --bus memory|nats] [--n 20000]
// Cross-node allocation+release throughput and latency, next to the raw bus
// request/reply round trip measured in the same run; and the cost of a walk
// through an MRGL of 10 vs 10,000 devices (the type index must make them equal).
import { parseArgs } from 'node:util';
import os from 'node:os';
import { validateConfig } from '../src/config/load.ts';
import type { ClusterModel } from '../src/config/model.ts';
import { silentLogger } from '../src/log.ts';
import type { CallManager } from '../src/node/callManager.ts';
import type { Bus } from '../src/cluster/bus.ts';
import { NatsBus } from '../src/cluster/natsBus.ts';
import { openBenchBus, type BenchCluster } from './clusters.ts';
import type { Allocation } from '../src/mrm/allocation.ts';

const { values: args } = parseArgs({
  options: {
    bus: { type: 'string', default: 'memory' },
    n: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    /** no node keys: what signing the bus costs, measured against this */
    unsigned: { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const CONC = Number(args.concurrency);

function buildModel(devices: number, bus: string): ClusterModel {
  // One transcoder at the end of a group full of conference bridges: a walk
  // that scanned by type would touch every bridge first.
  const media_resources: Record<string, unknown> = {};
  const names: string[] = [];
  for (let i = 0; i < devices - 1; i++) {
    const name = `CFB_${i}`;
    media_resources[name] = { type: 'conference_bridge', node: i % 2 ? 'cm2' : 'cm3', capacity: 10 };
    names.push(name);
  }
  media_resources.XCODE = { type: 'transcoder', node: 'cm2', capacity: 100_000, codecs: ['PCMU', 'PCMA'] };
  names.push('XCODE');
  const r = validateConfig({
    cluster: { name: `bench${devices}`, bus, request_timeout_ms: 5000, heartbeat_ms: 500, node_down_after_ms: 5000 },
    nodes: {
      cm1: { sip: '127.0.0.1:15061', admin: '127.0.0.1:18091' },
      cm2: { sip: '127.0.0.1:15071', admin: '127.0.0.1:18092' },
      cm3: { sip: '127.0.0.1:15081', admin: '127.0.0.1:18093' },
    },
    media_resources,
    media_resource_groups: { G: { devices: names } },
    media_resource_group_lists: { L: ['G'] },
    device_pools: { DP: { mrgl: 'L' } },
    phones: { '1001': { node: 'cm1', password: 'x', device_pool: 'DP' } },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.model;
}

/** Progress on stderr; the results go to stdout as JSON. */
function stage(what: string): void {
  console.error(`[bench:alloc ${args.bus}] ${what}`);
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Stats {
  ops_per_s: number;
  p50_us: number;
  p99_us: number;
}

/** Runs op N times with CONC in flight; latency per op. */
async function measure(n: number, conc: number, op: () => Promise<void>): Promise<Stats> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        next++;
        const s = performance.now();
        await op();
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    ops_per_s: Math.round(n / secs),
    p50_us: Math.round(pct(lat, 50) * 1000),
    p99_us: Math.round(pct(lat, 99) * 1000),
  };
}

async function allocRelease(cm: CallManager): Promise<void> {
  const a = await cm.mrm.allocate({ phone: '1001', type: 'transcoder' });
  await a.release();
}

type Requester = (subject: string, data: Uint8Array) => Promise<unknown>;

/**
 * The raw round trip between the same two nodes, with a payload of the
 * allocation's size and an echo server on the bus: through `request` (our bus,
 * or on NATS also the client's own request()).
 */
async function rawRoundTrip(request: Requester, to: Bus, n: number, conc: number): Promise<Stats> {
  const payload = new TextEncoder().encode(
    JSON.stringify({
      to: 'cm2/media_resource/XCODE~abcdefgh',
      body: {
        op: 'allocate',
        allocation_id: crypto.randomUUID(),
        requester: { node: 'cm1', boot: 'abcdefgh' },
        phone: '1001',
        type: 'transcoder',
      },
    }),
  );
  const sub = to.serve('bench.raw.echo', (m) => m.data);
  await to.flush();
  await measure(200, 1, async () => void (await request('bench.raw.echo', payload)));
  const s = await measure(n, conc, async () => void (await request('bench.raw.echo', payload)));
  sub.unsubscribe();
  return s;
}

/** The NATS client's own request(), when the bus is NATS: the baseline anyone would start from. */
function clientRequester(bus: Bus): Requester | undefined {
  return bus instanceof NatsBus ? (subject, data) => bus.nc.request(subject, data, { timeout: 5000 }) : undefined;
}

async function run(): Promise<void> {
  const benchBus = await openBenchBus(args.bus!, { unsigned: args.unsigned! });
  const makeCluster = (m: ClusterModel, log: ReturnType<typeof silentLogger>) => benchBus.start(m, log);
  const log = silentLogger();
  const results: Record<string, unknown> = {};

  const small: BenchCluster = await makeCluster(buildModel(10, benchBus.url), log);
  const cm1 = small.node('cm1');
  await measure(1000, 8, () => allocRelease(cm1)); // warm-up
  // Each allocate+release is two bus round trips; the raw figure is one.
  stage(`cross-node allocations, n=${N}`);
  const busReq: Requester = (subject, data) => small.bus('cm1').request(subject, data, 5000);
  const raw1 = await rawRoundTrip(busReq, small.bus('cm2'), N, 1);
  const client = clientRequester(small.bus('cm1'));
  const client1 = client && (await rawRoundTrip(client, small.bus('cm2'), N, 1));
  const seq = await measure(N, 1, () => allocRelease(cm1));
  const rawC = await rawRoundTrip(busReq, small.bus('cm2'), N, CONC);
  const clientC = client && (await rawRoundTrip(client, small.bus('cm2'), N, CONC));
  const conc = await measure(N, CONC, () => allocRelease(cm1));
  // Allocations alone, CONC in flight (the releases follow, unmeasured).
  const held: Allocation[] = [];
  const allocConc = await measure(
    N,
    CONC,
    async () => void held.push(await cm1.mrm.allocate({ phone: '1001', type: 'transcoder' })),
  );
  await Promise.all(held.map((a) => a.release()));
  const allocOnly: number[] = [];
  for (let i = 0; i < Math.min(N, 5000); i++) {
    const s = performance.now();
    const a = await cm1.mrm.allocate({ phone: '1001', type: 'transcoder' });
    allocOnly.push(performance.now() - s);
    await a.release();
  }
  allocOnly.sort((a, b) => a - b);
  results.cross_node = {
    raw_round_trip_sequential: raw1,
    alloc_release_sequential: seq,
    allocate_only_p50_us: Math.round(pct(allocOnly, 50) * 1000),
    allocate_only_p99_us: Math.round(pct(allocOnly, 99) * 1000),
    allocate_p50_over_raw_p50: +((pct(allocOnly, 50) * 1000) / raw1.p50_us).toFixed(2),
    ...(client1 && clientC
      ? {
          nats_client_request_sequential: client1,
          nats_client_request_concurrent: clientC,
          allocate_p50_over_nats_client_p50: +((pct(allocOnly, 50) * 1000) / client1.p50_us).toFixed(2),
        }
      : {}),
    raw_round_trip_concurrent: rawC,
    alloc_release_concurrent: conc,
    allocate_only_concurrent: allocConc,
    allocations_per_s_concurrent: allocConc.ops_per_s,
  };
  await small.stop();

  const walks: Record<string, Stats> = {};
  for (const size of [10, 10_000]) {
    stage(`selection through an MRGL of ${size} devices`);
    const c = await makeCluster(buildModel(size, benchBus.url), log);
    const cm = c.node('cm1');
    await measure(500, 1, () => allocRelease(cm));
    walks[`mrgl_${size}_devices`] = await measure(Math.min(N, 5000), 1, () => allocRelease(cm));
    await c.stop();
  }
  results.selection = {
    ...walks,
    cost_ratio_10000_vs_10: +(walks.mrgl_10000_devices!.p50_us / walks.mrgl_10_devices!.p50_us).toFixed(2),
  };
  results.machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    node: process.version,
    bus: args.bus,
    signed: !args.unsigned,
    n: N,
    concurrency: CONC,
  };
  await benchBus.close();
  console.log(JSON.stringify(results, null, 2));
}

await run();
