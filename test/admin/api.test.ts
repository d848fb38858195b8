// The admin HTTP API over real sockets, including bad input.
import { readFileSync } from 'node:fs';
import { VIEWER_TOKEN, adminFetch } from '../helpers/admin.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { NODES, startCluster } from '../helpers/cluster.ts';

const CONFIG = `${NODES}
media_resources:
  X2:  { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA], location: east }
  CF3: { type: conference_bridge, node: cm3, capacity: 2 }
  MOH: { type: moh, node: cm1, capacity: 2, audio_sources: { "1": m.wav } }
media_resource_groups:
  G: { devices: [X2, CF3] }
media_resource_group_lists:
  L: [G]
  L2: [G]
device_pools:
  DP: { mrgl: L, location: east }
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
  "1002": { node: cm1, password: p, device_pool: DP, mrgl: L2 }
  "2001": { node: cm2, password: p, device_pool: DP }
`;

describe('admin API', () => {
  let cluster: EmbeddedCluster;
  let url: string;
  let url3: string;
  const api = async (path: string, init?: RequestInit) => {
    const res = await adminFetch(url + path, init);
    const text = await res.text();
    // A JSON object or a JSON array of objects, depending on the route; {} for an empty body.
    type Body = Record<string, unknown> & Array<Record<string, unknown>>;
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Body, text };
  };
  const post = (body: unknown, raw?: string) =>
    api('/api/allocations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: raw ?? JSON.stringify(body),
    });

  before(async () => {
    cluster = await startCluster(CONFIG, { admin: true });
    url = cluster.node('cm1').admin!.url!;
    url3 = cluster.node('cm3').admin!.url!;
  });
  after(async () => {
    await cluster.stop();
  });

  it('lists nodes, phones, resources and MRGLs', async () => {
    const nodes = await api('/api/nodes');
    assert.deepEqual(
      nodes.body.map((n) => [n.name, n.up, n.self]),
      [
        ['cm1', true, true],
        ['cm2', true, false],
        ['cm3', true, false],
      ],
    );
    const phones = await api('/api/phones');
    const p1002 = phones.body.find((p) => p.number === '1002')!;
    assert.equal(p1002.mrgl, 'L2');
    assert.equal(p1002.mrgl_source, 'phone');
    assert.equal(p1002.registered, true);
    assert.match(String(phones.body.find((p) => p.number === '2001')!.pid), /^cm2\/phone\/2001~/);
    const res = await api('/api/resources');
    const x2 = res.body.find((r) => r.name === 'X2')!;
    assert.deepEqual(
      [x2.node, x2.registered, x2.capacity, x2.active, x2.available, x2.out_of_resources],
      ['cm2', true, 1, 0, 1, 0],
    );
    const mrgls = await api('/api/mrgls');
    assert.deepEqual(
      (mrgls.body as unknown as { default_group: { devices: Array<{ name: string }> } }).default_group.devices.map(
        (d) => d.name,
      ),
      ['MOH'],
    );
  });

  it('allocates, shows the allocation on the device node, refuses when full with a trace, and releases', async () => {
    const a = await post({ phone: '1001', type: 'transcoder' });
    assert.equal(a.status, 201);
    assert.equal(a.body.resource, 'X2');
    assert.equal(a.body.node, 'cm2');
    assert.match(String(a.body.pid), /^cm2\//);
    // cm3's API sees the device active (it asks cm2's device processes).
    const seen = (await (await adminFetch(`${url3}/api/resources`)).json()) as Array<Record<string, unknown>>;
    assert.equal(seen.find((r) => r.name === 'X2')!.active, 1);
    const full = await post({ phone: '1001', type: 'transcoder' });
    assert.equal(full.status, 503);
    assert.match(String(full.body.error), /no transcoder available/);
    const steps = (full.body.trace as { steps: Array<{ device: string; verdict: string }> }).steps;
    assert.deepEqual(
      steps.filter((s) => s.device).map((s) => `${s.device}:${s.verdict}`),
      ['X2:unavailable'],
    );
    assert.equal((await api('/api/allocations')).body.length, 1);
    assert.equal((await api(`/api/allocations/${String(a.body.id)}`, { method: 'DELETE' })).status, 204);
    assert.equal((await api(`/api/allocations/${String(a.body.id)}`, { method: 'DELETE' })).status, 404);
    const after = await api('/api/resources');
    assert.equal(after.body.find((r) => r.name === 'X2')!.active, 0);
    assert.equal(after.body.find((r) => r.name === 'X2')!.out_of_resources, 1);
  });

  it('drains a device: no new allocations, those in use stay; undrain reverses it', async () => {
    const held = await post({ phone: '1001', type: 'conference_bridge' });
    assert.equal(held.status, 201);
    assert.equal(held.body.resource, 'CF3');
    const drained = await api('/api/resources/CF3/drain', { method: 'POST' });
    assert.equal(drained.status, 200);
    assert.deepEqual([drained.body.draining, drained.body.active], [true, 1]);
    const refused = await post({ phone: '1001', type: 'conference_bridge' });
    assert.equal(refused.status, 503);
    const step = (refused.body.trace as { steps: Array<{ device: string; detail?: string }> }).steps.find(
      (x) => x.device === 'CF3',
    )!;
    assert.match(step.detail ?? '', /draining/);
    const listed = (await api('/api/resources')).body.find((r) => r.name === 'CF3')!;
    assert.deepEqual([listed.draining, listed.active, listed.available], [true, 1, 0]);
    assert.equal(
      (await api(`/api/allocations/${String(held.body.id)}`, { method: 'DELETE' })).status,
      204,
      'the allocation in use finishes normally',
    );
    assert.equal((await adminFetch(`${url}/api/resources/CF3/drain`, { method: 'POST' }, VIEWER_TOKEN)).status, 403);
    assert.equal((await api('/api/resources/NOPE/drain', { method: 'POST' })).status, 404);
    assert.equal((await api('/api/resources/CF3/undrain', { method: 'POST' })).body.draining, false);
    const again = await post({ phone: '1001', type: 'conference_bridge' });
    assert.equal(again.status, 201);
    await api(`/api/allocations/${String(again.body.id)}`, { method: 'DELETE' });
  });

  it('uses an MRGL given in the request', async () => {
    const a = await post({ phone: '1001', type: 'conference_bridge', mrgl: 'L2' });
    assert.equal(a.status, 201);
    assert.equal((a.body.trace as { mrgl_source: string }).mrgl_source, 'request');
    await api(`/api/allocations/${String(a.body.id)}`, { method: 'DELETE' });
  });

  it('explains without allocating', async () => {
    const e = await api('/api/explain?phone=1001&type=conference_bridge');
    assert.equal(e.status, 200);
    const steps = e.body.steps as unknown as Array<{ device: string; verdict: string }>;
    assert.deepEqual(
      steps.map((s) => `${s.device}:${s.verdict}`),
      ['X2:wrong_type', 'CF3:would_allocate', 'MOH:wrong_type'],
    );
    const e2 = await api('/api/explain?phone=1001&type=transcoder&codecs=pcmu,G722');
    assert.equal(
      (e2.body.steps as unknown as Array<{ verdict: string }>).find((s) => s.verdict === 'no_capability') !== undefined,
      true,
    );
    // 2001 is cm2's phone: cm1 asks cm2 over the bus, and cm2's refusal comes back as it was (not as a 500).
    const remote = await api('/api/explain?phone=2001&type=conference_bridge');
    assert.equal(remote.status, 200);
    assert.equal(remote.body.phone, '2001');
    assert.ok(
      (remote.body.steps as unknown as Array<{ device: string; verdict: string }>).some(
        (s) => s.device === 'CF3' && s.verdict === 'would_allocate',
      ),
    );
    const refused = await api('/api/explain?phone=2001&type=conference_bridge&mrgl=NOPE');
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.error), /^cm2: unknown media resource group list "NOPE"/);
  });

  it('answers bad input with a 4xx and a message, never a 500', async () => {
    const cases: Array<[Promise<{ status: number; body: Record<string, unknown> }>, number, RegExp]> = [
      [post({ phone: '9999', type: 'mtp' }), 404, /unknown phone "9999"/],
      [post({ phone: '1001', type: 'jukebox' }), 400, /type must be one of/],
      [post({ phone: '1001' }), 400, /type/],
      [post({ phone: '1001', type: 'mtp', mrgl: 'NOPE' }), 400, /unknown media resource group list "NOPE"/],
      [post({ phone: '1001', type: 'mtp', color: 'red' }), 400, /color/],
      [post({ phone: '2001', type: 'mtp' }), 409, /controlled by cm2/],
      [post(null, '{"phone": '), 400, /JSON/i],
      [post(null, '[]'), 400, /object/],
      [
        api('/api/allocations', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
        415,
        /content-type/i,
      ],
      [api('/api/explain?phone=1001'), 400, /type must be one of/],
      [api('/api/explain?phone=1001&type=transcoder&codecs=MP3'), 400, /Invalid option/i],
      [api('/api/nothing'), 404, /no route/],
      [post({ phone: '1001', type: 'mtp', requirement: { codecs: 'PCMU' } }), 400, /requirement.codecs/],
    ];
    for (const [p, status, msg] of cases) {
      const r = await p;
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(String(r.body.error), msg);
    }
    // The node to ask instead, as data (the CLI follows it), not only in the message.
    const notLocal = await post({ phone: '2001', type: 'mtp' });
    assert.deepEqual([notLocal.body.code, notLocal.body.controller], ['not_local', 'cm2']);
    const big = await post({ phone: '1001', type: 'mtp', pad: 'x'.repeat(100_000) });
    assert.equal(big.status, 413);
    assert.equal((await api('/healthz')).status, 200);
  });

  it('exports Prometheus metrics', async () => {
    const res = await adminFetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /tandem_allocations_total\{type="transcoder",result="allocated",node="cm1"\} [1-9]/);
    assert.match(text, /tandem_resource_capacity\{device="MOH",type="moh",node="cm1"\} 2/);
    assert.match(text, /tandem_resource_available\{device="MOH",type="moh",node="cm1"\} 2/);
    assert.match(text, /tandem_resource_out_of_resources_total\{device="MOH",type="moh",node="cm1"\} 0/);
    // admission control's counts, there from the start (counted in test/sip/admission.test.ts)
    assert.match(text, /tandem_call_setups_total\{result="offered",node="cm1"\} \d+/);
    assert.match(text, /tandem_call_setups_in_progress\{node="cm1"\} 0/);
    // The process and Node.js, the build, calls and registered phones; every MRGL's exhaustion series from the start.
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds_count',
    ]) {
      assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? \\d`, 'm'), name);
    }
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    assert.match(
      text,
      new RegExp(
        `tandem_build_info\\{version="${version.replaceAll('.', '\\.')}",nodejs="${process.version.replaceAll('.', '\\.')}",node="cm1"\\} 1`,
      ),
    );
    assert.match(text, /tandem_calls_in_progress\{node="cm1"\} 0/);
    assert.match(text, /tandem_phones_registered\{node="cm1"\} 0/);
    assert.match(text, /tandem_mrgl_exhausted_total\{mrgl="L2",type="annunciator",node="cm1"\} 0/);
    // X2 on cm2 refused one allocation for want of capacity earlier in this suite
    const cm2 = await (await adminFetch(`${cluster.node('cm2').admin!.url}/metrics`)).text();
    assert.match(cm2, /tandem_resource_out_of_resources_total\{device="X2",type="transcoder",node="cm2"\} [1-9]/);
  });
});
