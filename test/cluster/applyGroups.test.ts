// tandem apply and Call Manager Groups: a phone added to a device pool that
// names [cm1, cm2] is backed up by cm2 at once (its standby process), not
// at cm2's next restart: a REGISTER of it at cm2 is kept on standby. A phone
// whose pool no longer names cm2 loses its standby there.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { adminFetch, withTestAdmin } from '../helpers/admin.ts';
import { eventually, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

describe('tandem apply gives a Call Manager Group its backups at once', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const admin: Record<string, string> = {};
  let head = '';
  const version = (phones: string) =>
    withTestAdmin(`${head}
device_pools:
  DP12: { call_managers: [cm1, cm2] }
  DP1: {}
phones:
${phones}`);
  const closers: Array<{ close(): void }> = [];
  before(async () => {
    head = 'nodes:\n';
    for (const n of ['cm1', 'cm2']) {
      sip[n] = `127.0.0.1:${await freePort()}`;
      admin[n] = `127.0.0.1:${await freePort()}`;
      head += `  ${n}: { sip: "${sip[n]}", admin: "${admin[n]}" }\n`;
    }
    cluster = await startCluster(version('  "1001": { node: cm1, password: a, device_pool: DP12 }\n'), {
      sip: true,
      admin: true,
    });
  });
  after(async () => {
    for (const c of closers) c.close();
    await cluster?.stop();
  });
  const apply = async (phones: string) => {
    const res = await adminFetch(`${cluster.node('cm1').admin!.url!}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ yaml: version(phones) }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { nodes: Array<{ node: string; status: string; changes: string[] }> };
  };

  it('a phone added to the group is kept on standby by cm2 right after the apply; moved out of the group, cm2 lets it go', async () => {
    const r = await apply(
      '  "1001": { node: cm1, password: a, device_pool: DP12 }\n  "1002": { node: cm1, password: b, device_pool: DP12 }\n',
    );
    assert.deepEqual(r.nodes.find((n) => n.node === 'cm2')?.changes, ['backs up phone 1002 (standby)']);
    const phone = await SipAgent.open('1002', 'b', sip.cm2!);
    closers.push(phone);
    assert.equal((await phone.register()).status, 200, 'cm2 takes the REGISTER');
    assert.equal(
      cluster.node('cm2').sip!.registrar.isActive('1002'),
      false,
      'on standby: cm1, first of the group, is up',
    );
    assert.equal(cluster.node('cm2').phones.get('1002')?.snapshot().registration?.port, phone.port);
    // Out of the group: cm2 drops its standby process.
    const r2 = await apply(
      '  "1001": { node: cm1, password: a, device_pool: DP12 }\n  "1002": { node: cm1, password: b, device_pool: DP1 }\n',
    );
    assert.deepEqual(r2.nodes.find((n) => n.node === 'cm2')?.changes, ['no longer backs up phone 1002']);
    await eventually(() => !cluster.node('cm2').phones.has('1002'), 3000, 'cm2 to let 1002 go');
    const refused = await phone.register();
    assert.equal(refused.status, 403);
    assert.match(refused.reason, /controlled by cm1/);
  });
});
