// The simulated cluster's config, built the same way in the orchestrator and
// in every worker process (no 100,000-line YAML to parse in each): N nodes
// cm1..cmN, D transcoders on each, one phone per node whose MRGL names the
// next node's devices (every allocation crosses the bus), and one conference
// bridge on cm1 whose room entries measure how fast a mapping table change
// reaches every node.
import { validateConfig } from '../../src/config/load.ts';
import type { ClusterModel } from '../../src/config/model.ts';

export interface SimShape {
  nodes: number;
  devices: number;
  /** NATS client ports; node i connects to server i mod S first */
  busPorts: number[];
  /** where the node keys are (tandem nats-setup's layout) */
  baseDir: string;
}

export const nodeName = (i: number) => `cm${i + 1}`;
export const phoneOf = (i: number) => String(100000 + i);
export const PROBE_BRIDGE = 'PROBE_CFB';

export function simModel(s: SimShape): ClusterModel {
  const url = (first: number) =>
    s.busPorts.map((_, j) => `nats://127.0.0.1:${s.busPorts[(first + j) % s.busPorts.length]}`).join(',');
  const nodes: Record<string, unknown> = {};
  const media_resources: Record<string, unknown> = {
    [PROBE_BRIDGE]: { type: 'conference_bridge', node: 'cm1', capacity: 10 },
  };
  const media_resource_groups: Record<string, unknown> = {};
  const media_resource_group_lists: Record<string, unknown> = {};
  const device_pools: Record<string, unknown> = {};
  const phones: Record<string, unknown> = {};
  for (let i = 0; i < s.nodes; i++) {
    const n = nodeName(i);
    // SIP and admin are never opened in the simulation; the addresses only have to be valid and distinct.
    nodes[n] = { sip: `127.0.0.1:${20000 + i}`, admin: `127.0.0.1:${30000 + i}`, bus: url(i) };
    const names: string[] = [];
    for (let d = 0; d < s.devices; d++) {
      const name = `X${i}_${d}`;
      media_resources[name] = { type: 'transcoder', node: n, capacity: 1000, codecs: ['PCMU', 'PCMA'] };
      names.push(name);
    }
    media_resource_groups[`G${i}`] = { devices: names };
    media_resource_group_lists[`L${i}`] = [`G${(i + 1) % s.nodes}`];
    device_pools[`DP${i}`] = { mrgl: `L${i}` };
    phones[phoneOf(i)] = { node: n, password: `pw${i}`, device_pool: `DP${i}` };
  }
  const r = validateConfig({
    cluster: {
      name: 'sim',
      bus: url(0),
      request_timeout_ms: 1000,
      nats: { kv_replicas: s.busPorts.length === 3 ? 3 : 1 },
    },
    nodes,
    media_resources,
    media_resource_groups,
    media_resource_group_lists,
    device_pools,
    phones,
    admin: { tokens: [{ name: 'sim', role: 'operator', sha256: '0'.repeat(64) }] },
  });
  if (!r.ok)
    throw new Error(
      `simulated config invalid: ${r.problems
        .slice(0, 5)
        .map((p) => `${p.path}: ${p.message}`)
        .join('; ')}`,
    );
  r.model.baseDir = s.baseDir;
  return r.model;
}
