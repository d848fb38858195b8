import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { NODES } from '../helpers/cluster.ts';

const run = promisify(execFile);

function problems(yaml: string): string[] {
  const r = parseConfig(yaml);
  assert.equal(r.ok, false, 'config should be rejected');
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
}

const BASE = `${NODES}
media_resources:
  XE: { type: transcoder, node: cm2, capacity: 4, location: east, codecs: [PCMU, PCMA] }
  XW: { type: transcoder, node: cm3, capacity: 4, location: west, codecs: [PCMU, PCMA] }
  CFB: { type: conference_bridge, node: cm1, capacity: 8 }
media_resource_groups:
  MRG_EAST: { location: east, devices: [XE] }
  MRG_WEST: { devices: [XW] }
`;

describe('config', () => {
  it('accepts the bundled example and compiles its lookups', () => {
    const m = loadConfigFile('examples/acme.yaml');
    assert.equal(m.nodes.size, 3);
    assert.deepEqual(m.groups.get('MRG_EAST')!.byType.get('conference_bridge'), ['CFB_EAST_1', 'CFB_EAST_2']);
    assert.deepEqual(m.defaultGroup.devices, ['XCODE_SPARE']);
    assert.deepEqual(
      m.resolveMrgl(m.phones.get('2003')!),
      { mrgl: 'MRGL_EAST', source: 'phone' },
      "the phone's own MRGL replaces the pool's",
    );
    assert.deepEqual(m.resolveMrgl(m.phones.get('2001')!), { mrgl: 'MRGL_WEST', source: 'device_pool' });
    // one precedence rule: request > registration > phone > device pool
    const p = m.phones.get('2003')!;
    assert.deepEqual(m.resolveMrgl(p, { registration: 'MRGL_WEST' }), { mrgl: 'MRGL_WEST', source: 'registration' });
    assert.deepEqual(m.resolveMrgl(p, { request: 'MRGL_EXEC', registration: 'MRGL_WEST' }), {
      mrgl: 'MRGL_EXEC',
      source: 'request',
    });
    const types = new Set([...m.resources.values()].map((r) => r.type));
    assert.equal(types.size, 5, 'the example has every resource type');
  });

  it('the NATS example is the embedded example with only the bus changed', () => {
    const embedded = loadConfigFile('examples/acme.yaml').config;
    const nats = loadConfigFile('examples/acme-nats.yaml').config;
    assert.equal(embedded.cluster.bus, 'memory');
    assert.match(nats.cluster.bus, /^nats:\/\//);
    assert.deepEqual({ ...nats, cluster: { ...nats.cluster, bus: 'memory' } }, embedded);
    // The --bus option / TANDEM_BUS turns either into the other.
    assert.equal(
      loadConfigFile('examples/acme.yaml', { cluster: { bus: 'nats://10.0.0.1:4222' } }).config.cluster.bus,
      'nats://10.0.0.1:4222',
    );
  });

  it('names an unknown group in an MRGL with its path', () => {
    assert.deepEqual(
      problems(`${BASE}
media_resource_group_lists:
  MRGL_EAST: [MRG_EAST, MRG_WEST, MRG_WST]
`),
      ['media_resource_group_lists.MRGL_EAST[2]: unknown group "MRG_WST" (did you mean "MRG_WEST"?)'],
    );
  });

  it('says "did you mean" only for a near miss', () => {
    assert.deepEqual(
      problems(`${BASE}
media_resource_group_lists:
  L: [MRG_NORTH]
device_pools:
  DP: { mrgl: l }
phones:
  "1001": { node: cm4, password: x, device_pool: DP }
`),
      [
        'media_resource_group_lists.L[0]: unknown group "MRG_NORTH"',
        'device_pools.DP.mrgl: unknown media resource group list "l" (did you mean "L"?)',
        'phones.1001.node: unknown node "cm4"',
      ],
    );
  });

  it('names a duplicated YAML key, explains a capacity that is not a number, and finds clashes between sections', () => {
    assert.deepEqual(
      problems(`${BASE}
media_resource_groups:
  G: { devices: [XE] }
`),
      ['line 15:1: duplicate key "media_resource_groups": a later entry would silently replace the first'],
    );
    assert.deepEqual(
      problems(`${NODES}
media_resources:
  XE: { type: conference_bridge, node: cm2, capacity: sixteen }
`),
      ['media_resources.XE.capacity: expected a whole number of units (1-100000) or auto'],
    );
    // Two nodes on one machine whose RTP port ranges overlap; a phone whose number a conference pattern takes.
    const clash = problems(`
nodes:
  cm1: { sip: "127.0.0.1:15060", admin: "127.0.0.1:18081", rtp: { address: 127.0.0.1, ports: "20000-20999" } }
  cm2: { sip: "127.0.0.1:15070", admin: "127.0.0.1:18082", rtp: { address: 127.0.0.1, ports: "20900-21999" } }
  cm3: { sip: "127.0.0.1:15080", admin: "127.0.0.1:18083", rtp: { address: 127.0.0.2, ports: "20000-20999" } }
sip:
  conference_numbers: ["8xxx"]
device_pools:
  DP: {}
phones:
  "8001": { node: cm1, password: x, device_pool: DP }
  "80011": { node: cm1, password: x, device_pool: DP }
`);
    assert.deepEqual(clash, [
      "nodes.cm2.rtp.ports: 20900-21999 overlaps cm1's 20000-20999 on 127.0.0.1",
      'phones.8001: 8001 is also a conference number (sip.conference_numbers[0] "8xxx"): calls to it would reach the bridge, never the phone',
    ]);
  });

  it('rejects a device located elsewhere in a location-limited group', () => {
    assert.deepEqual(problems(`${BASE.replace('devices: [XE]', 'devices: [XE, XW]')}`), [
      'media_resource_groups.MRG_EAST.devices[1]: device "XW" is located "west", but the group is limited to "east"',
    ]);
  });

  it('reports every cross-reference error in one pass', () => {
    const p = problems(`${BASE}
  MRG_X: { devices: [NOPE, CFB, CFB] }
device_pools:
  DP: { mrgl: MRGL_NONE }
phones:
  "1001": { node: cm9, password: x, device_pool: DP_NONE, mrgl: MRGL_NONE }
`);
    assert.deepEqual(p, [
      'media_resource_groups.MRG_X.devices[0]: unknown media resource "NOPE"',
      'media_resource_groups.MRG_X.devices[2]: device "CFB" is listed twice',
      'device_pools.DP.mrgl: unknown media resource group list "MRGL_NONE"',
      'phones.1001.node: unknown node "cm9"',
      'phones.1001.device_pool: unknown device pool "DP_NONE"',
      'phones.1001.mrgl: unknown media resource group list "MRGL_NONE"',
    ]);
  });

  it('checks lines, hold sources and the ad hoc conference number against the rest', () => {
    assert.deepEqual(
      problems(`${BASE}
sip: { adhoc_conference_number: "1001" }
device_pools:
  DP: { network_hold_audio_source: 3 }
phones:
  "1001": { node: cm1, password: x, device_pool: DP, max_calls: 2, busy_trigger: 3 }
`),
      [
        'device_pools.DP.network_hold_audio_source: no moh server has audio source 3',
        'phones.1001.busy_trigger: busy_trigger 3 is more than max_calls 2',
        "sip.adhoc_conference_number: 1001 is also a phone's number",
      ],
    );
  });

  it('liveness settings and per-node buses: dead after at least down after; a node bus only on NATS', () => {
    assert.deepEqual(
      problems(`cluster: { heartbeat_ms: 500, node_down_after_ms: 2000, node_dead_after_ms: 1000 }
nodes:
  cm1: { sip: "127.0.0.1:15060", admin: "127.0.0.1:18081", bus: "nats://10.0.0.1:4222" }
`).sort(),
      [
        'cluster.node_dead_after_ms: must be at least node_down_after_ms (2000)',
        'nodes.cm1.bus: a node of an in-memory cluster has no NATS servers of its own (cluster.bus is memory)',
      ],
    );
    const ok = parseConfig(`cluster: { bus: "nats://127.0.0.1:4222", node_dead_after_ms: 60000 }
nodes:
  cm1: { sip: "127.0.0.1:15060", admin: "127.0.0.1:18081", bus: "nats://127.0.0.1:4223" }
  cm2: { sip: "127.0.0.1:15070", admin: "127.0.0.1:18082" }
`);
    assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.problems));
    assert.equal(ok.model.nodes.get('cm1')!.bus, 'nats://127.0.0.1:4223');
    assert.equal(ok.model.nodes.get('cm2')!.bus, 'nats://127.0.0.1:4222');
    assert.equal(ok.model.config.cluster.node_dead_after_ms, 60000);
  });

  it('checks shapes: types, capacities, capabilities, unknown fields', () => {
    const p = problems(`${NODES}
media_resources:
  A: { type: jukebox, node: cm1, capacity: 1 }
  B: { type: transcoder, node: cm1, capacity: 0, codecs: [PCMU, PCMA] }
  C: { type: conference_bridge, node: cm1, capacity: 2, colour: red }
`);
    assert.equal(p.length, 3);
    assert.match(p[0]!, /^media_resources\.A\.type: /);
    assert.match(p[1]!, /^media_resources\.B\.capacity: /);
    assert.equal(p[2], 'media_resources.C: unknown field(s): colour');
    assert.deepEqual(
      problems(`${NODES}
media_resources:
  X: { type: transcoder, node: cm1, capacity: 1, codecs: [PCMU] }
  M: { type: moh, node: cm4, capacity: 1, codecs: [PCMU, PCMA] }
`),
      [
        'media_resources.X.codecs: a transcoder needs at least two codecs',
        'media_resources.M.node: unknown node "cm4"',
        'media_resources.M.codecs: only a transcoder has codecs',
        'media_resources.M.audio_sources: a moh server needs at least one audio source',
      ],
    );
  });

  it('takes capacity auto, media workers and SRTP settings, and names bad ones', () => {
    const ok =
      parseConfig(`${NODES.replace(/(cm1: \{[^}]*)\}/, '$1, rtp: { address: 127.0.0.1, ports: 40000-40999, workers: auto } }')}
media_resources:
  CFB: { type: conference_bridge, node: cm1, capacity: auto, srtp: false }
device_pools:
  DP: { srtp: required }
phones:
  "1001": { node: cm1, password: p, device_pool: DP, srtp: off }
`);
    assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.problems));
    const cfb = ok.model.resources.get('CFB')!;
    assert.deepEqual(
      [cfb.capacity, cfb.srtp, ok.model.phones.get('1001')!.srtp, ok.model.nodes.get('cm1')!.rtp!.workers],
      ['auto', false, 'off', 'auto'],
    );
    const p = problems(`${NODES}
media_resources:
  A: { type: mtp, node: cm1, capacity: lots }
  B: { type: mtp, node: cm1, capacity: 1, srtp: maybe }
device_pools:
  DP: { srtp: sometimes }
`);
    assert.match(p.join('\n'), /media_resources\.A\.capacity: /);
    assert.match(p.join('\n'), /media_resources\.B\.srtp: /);
    assert.match(p.join('\n'), /device_pools\.DP\.srtp: /);
  });

  it('trunks and the dial plan: names what they refer to, bad patterns, partitions no pattern is in, a peer that is a node', () => {
    const trunks = `${BASE}
device_pools:
  DP: { partitions: [intl, locl] }
trunks:
  CARRIER: { nodes: [cm1, cm4], peers: ["127.0.0.1:5080", "127.0.0.1:15070"], device_pool: DP, inbound: { "5550100": "1009" } }
dial_plan:
  route_patterns:
    - { pattern: "9.[2-9]XXXXXX", partition: local, route: [CARRIER, CARIER] }
    - { pattern: "9.[9-2]X", route: [CARRIER] }
    - { pattern: "9!.1", route: [CARRIER] }
    - { pattern: "9.[2-9]XXXXXX", partition: local, route: [CARRIER] }
`;
    assert.deepEqual(problems(trunks), [
      'dial_plan.route_patterns[1].pattern: route pattern "9.[9-2]X": [9-2]: range 9-2 runs backwards',
      'dial_plan.route_patterns[2].pattern: route pattern "9!.1": "!" (one or more digits) must come last',
    ]);
    const fixed = trunks
      .replace('"9.[9-2]X"', '"9.[^0]X"')
      .replace('"9!.1"', '"9.1!"')
      .replace('dial_plan:', '  BACKUP: { nodes: [cm1], peers: ["127.0.0.1:5080"], device_pool: DP }\ndial_plan:');
    assert.deepEqual(problems(fixed), [
      'trunks.CARRIER.nodes[1]: unknown node "cm4"',
      `trunks.CARRIER.peers[1]: 127.0.0.1:15070 is a node's own SIP address: a trunk leads out of the cluster`,
      'trunks.CARRIER.peers[0]: 127.0.0.1:5080 is also a peer of trunk BACKUP on a node both use: calls in could not be told apart',
      'trunks.CARRIER.inbound.5550100: unknown phone "1009"',
      'dial_plan.route_patterns[0].route[1]: unknown trunk "CARIER" (did you mean "CARRIER"?)',
      'dial_plan.route_patterns[3].pattern: "9.[2-9]XXXXXX" is already route_patterns[0] in partition local',
      'device_pools.DP.partitions[0]: no route pattern is in partition "intl"',
      'device_pools.DP.partitions[1]: no route pattern is in partition "locl" (did you mean "local"?)',
    ]);
  });

  it('trunk peers: a DNS name alone (SRV) or with a port, not a half address; tls_ca only with transport tls', () => {
    const trunk = (peers: string, extra = '') => `${BASE}
device_pools: { DP: {} }
trunks:
  CARRIER: { nodes: [cm1], peers: [${peers}], device_pool: DP${extra} }
`;
    const accepted = (yaml: string) => {
      const r = parseConfig(yaml);
      assert.ok(r.ok, r.ok ? '' : r.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    };
    accepted(trunk('"carrier.example", "sbc.carrier.example:5060", "198.51.100.7"'));
    assert.match(problems(trunk('"198.51"')).join('\n'), /trunks\.CARRIER\.peers\[0\]: /);
    assert.match(problems(trunk('"carrier.example:0"')).join('\n'), /port must be 1-65535/);
    assert.deepEqual(problems(trunk('"carrier.example"', ', tls_ca: ca.pem')), [
      'trunks.CARRIER.tls_ca: tls_ca is for transport: tls (this trunk uses udp)',
    ]);
    accepted(trunk('"carrier.example"', ', transport: tls, tls_ca: ca.pem'));
    assert.match(problems(trunk('"carrier.example"', ', transport: sctp')).join('\n'), /trunks\.CARRIER\.transport: /);
  });

  it('reports YAML syntax errors with a line number', () => {
    const p = problems('nodes:\n  cm1: { sip: "a\n');
    assert.match(p[0]!, /^line \d+:\d+: /);
  });

  it('tandem check-config prints every error and exits non-zero', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-cfg-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `${BASE}\nmedia_resource_group_lists:\n  MRGL_EAST: [MRG_EAST, MRG_WEST, MRG_WST]\n`);
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'check-config', bad]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /media_resource_group_lists\.MRGL_EAST\[2\]: unknown group "MRG_WST"/);
        return true;
      },
    );
    const ok = await run('node', ['--import', 'tsx', 'src/cli.ts', 'check-config', 'examples/acme.yaml']);
    assert.match(ok.stdout, /ok \(3 nodes, 13 media resources/);
  });

  it('check-config names a music-on-hold file that is not there, relative to the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-moh-cfg-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      `${NODES}\nmedia_resources:\n  M: { type: moh, node: cm1, capacity: 2, audio_sources: { "1": sounds/none.wav } }\n`,
    );
    await assert.rejects(
      run('node', ['--import', 'tsx', 'src/cli.ts', 'check-config', file]),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(
          e.stderr,
          /media_resources\.M\.audio_sources\.1: no such file sounds\/none\.wav in the media directory/,
        );
        return true;
      },
    );
  });
});
