// Each node holds only its part of the mapping table: every phone and room,
// its own devices and those of the nodes its MRGLs name. Three node
// processes over a real nats-server: cm1's phone uses cm2's transcoder, cm3
// has a dozen devices no MRGL of cm1 names. cm1 never reads them; an MRGL
// handed over with a request that names cm3's devices has them read first,
// and the first such allocation already lands on cm3.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminFetch } from '../helpers/admin.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

const EXTRA = 12;
const extra = Array.from(
  { length: EXTRA },
  (_, i) => `  Y3_${i}: { type: transcoder, node: cm3, capacity: 2, codecs: [PCMU, PCMA] }`,
).join('\n');

describe('a node holds only its part of the mapping table', () => {
  const fx = useNatsNodes({
    name: 'partial',
    nodes: ['cm1', 'cm2', 'cm3'],
    config: `
media_resources:
  X2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA] }
  X3: { type: transcoder, node: cm3, capacity: 2, codecs: [PCMU, PCMA] }
${extra}
media_resource_groups:
  G2: { devices: [X2] }
  G3: { devices: [X3, ${Array.from({ length: EXTRA }, (_, i) => `Y3_${i}`).join(', ')}] }
media_resource_group_lists:
  L1: [G2]
  L3: [G3]
device_pools:
  DP1: { mrgl: L1 }
  DP3: { mrgl: L3 }
phones:
  "1001": { node: cm1, password: p1, device_pool: DP1 }
  "3001": { node: cm3, password: p3, device_pool: DP3 }
`,
  });
  const api = async (node: string, path: string, init?: RequestInit) => {
    const r = await adminFetch(`http://${fx.admin[node]}${path}`, init);
    const text = await r.text();
    return { status: r.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const metric = async (node: string, name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec((await api(node, '/metrics')).text);
    assert.ok(m, `${name} in cm1's /metrics`);
    return Number(m[1]);
  };

  it("cm1 reads cm2's devices and the phones, never cm3's devices; a request naming cm3's MRGL has them read first and lands there at once", async () => {
    // cm1 reaches X2 through its phone's MRGL: its part of the table is in.
    await eventually(
      async () => {
        const r = await api('cm1', '/api/allocations', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ phone: '1001', type: 'transcoder' }),
        });
        if (r.status !== 201) return false;
        assert.equal(r.json().resource, 'X2');
        await api('cm1', `/api/allocations/${String(r.json().id)}`, { method: 'DELETE' });
        return true;
      },
      20_000,
      'cm1 to allocate X2',
    );
    assert.equal(await metric('cm1', 'tandem_mapping_table_watched_nodes'), 2, 'cm1 watches cm1 and cm2');
    // Two phones and X2 (cm1 has no devices); cm3's 13 devices would take it past 13.
    assert.equal(await metric('cm1', 'tandem_mapping_table_entries'), 3);
    const reads = await metric('cm1', 'tandem_mapping_table_reads_total');
    // cm3 holds its own 13 devices and the phones.
    assert.equal(await metric('cm3', 'tandem_mapping_table_watched_nodes'), 1);
    assert.equal(await metric('cm3', 'tandem_mapping_table_entries'), 1 + EXTRA + 2);

    // The console's view from cm1 still shows cm3's devices, from cm3's own answer, without watching them.
    const resources = JSON.parse((await api('cm1', '/api/resources')).text) as Array<{
      name: string;
      registered: boolean;
    }>;
    assert.deepEqual(
      resources.filter((r) => r.name.startsWith('Y3_') && !r.registered),
      [],
      'every cm3 device shown registered',
    );
    assert.equal(await metric('cm1', 'tandem_mapping_table_watched_nodes'), 2, 'a view is no reason to watch');

    // An MRGL handed over with the request (as a phone's X-Media-Resource-Group-List header would): cm3's devices,
    // never read on cm1 before, are read first; the first allocation already goes to X3.
    const r = await api('cm1', '/api/allocations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '1001', type: 'transcoder', mrgl: 'L3' }),
    });
    assert.equal(r.status, 201, r.text);
    const alloc = r.json() as {
      id: string;
      resource: string;
      node: string;
      trace: { steps: Array<{ verdict: string; detail?: string }> };
    };
    assert.equal(alloc.resource, 'X3');
    assert.equal(alloc.node, 'cm3');
    assert.deepEqual(
      alloc.trace.steps.filter((s) => s.verdict === 'not_registered'),
      [],
      'no device skipped as unknown',
    );
    assert.equal(await metric('cm1', 'tandem_mapping_table_watched_nodes'), 3);
    assert.equal(await metric('cm1', 'tandem_mapping_table_entries'), 3 + 1 + EXTRA, "cm3's devices held now");
    assert.ok((await metric('cm1', 'tandem_mapping_table_reads_total')) > reads, "cm3's device list read now");
    assert.equal((await api('cm1', `/api/allocations/${alloc.id}`, { method: 'DELETE' })).status, 204);
  });
});
