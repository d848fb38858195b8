// The legit first under a flood, as the issue measured it: the node in its
// own process (`tandem start`), a stranger's UDP REGISTER flood from another
// process at 30,000 requests/s, and a registered phone refreshing its
// registration meanwhile. The phone's requests come from its binding's
// transport address, which the node serves before strangers (UdpIntake):
// at least 99 % of them must be answered on the first try (no RFC 3261
// retransmission needed). The node must stay up and answer strangers too,
// with what time is left.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { withTestAdmin, adminFetch } from '../helpers/admin.ts';
import { freePort } from '../helpers/ports.ts';
import { start, type Proc } from '../helpers/proc.ts';
import { SipAgent } from '../helpers/sipAgent.ts';

const RATE = 30_000;
const SECONDS = 10;

describe('a registered phone is served first during a 30,000/s REGISTER flood from strangers', () => {
  let node: Proc;
  let sip = '';
  let admin = '';
  const closers: Array<{ close(): void }> = [];
  before(async () => {
    sip = `127.0.0.1:${await freePort()}`;
    admin = `127.0.0.1:${await freePort()}`;
    const file = join(mkdtempSync(join(tmpdir(), 'tandem-flood-')), 'cluster.yaml');
    writeFileSync(
      file,
      withTestAdmin(`
cluster: { name: flood }
nodes:
  cm1: { sip: "${sip}", admin: "${admin}" }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: secret-1001, device_pool: DP }
`),
    );
    node = start('node', ['--import', 'tsx', 'src/cli.ts', 'start', '--config', file, '--log-level', 'warn']);
    await node.waitFor(/call manager\(s\) up/, 30_000);
  });
  after(() => {
    for (const c of closers) c.close();
    node?.kill('SIGKILL');
  });

  it('≥ 99 % of the phone’s REGISTERs answered on the first try; the node answers strangers with the time left', async () => {
    const phone = await SipAgent.open('1001', 'secret-1001', sip);
    closers.push(phone);
    assert.equal((await phone.register()).status, 200);
    const flood = start('node', [
      '--import',
      'tsx',
      'test/helpers/sipFlood.ts',
      sip,
      String(RATE),
      String(SECONDS),
      '127.0.0.2,127.0.0.4,127.0.0.5',
    ]);
    await new Promise((r) => setTimeout(r, 1500)); // the flood under way
    phone.sends = 0;
    let registered = 0;
    let attempts = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < (SECONDS - 3) * 1000) {
      attempts++;
      if ((await phone.register([], 600, 'secret-1001', true)).status === 200) registered++;
      await new Promise((r) => setTimeout(r, 100));
    }
    const sent = Number((await flood.waitFor(/sent (\d+)/, 20_000))[1]);
    const firstTry = (2 * registered) / phone.sends;
    assert.equal(registered, attempts, 'every registration succeeded');
    assert.ok(attempts >= 30, `${attempts} registrations`);
    assert.ok(
      firstTry >= 0.99,
      `${(100 * firstTry).toFixed(1)} % answered on the first try (${phone.sends} datagrams for ${registered} registrations)`,
    );
    assert.ok(sent >= RATE * SECONDS * 0.8, `the flood sent ${sent}`);
    // The node is up and says what it dropped.
    const metrics = await (await adminFetch(`http://${admin}/metrics`)).text();
    const answered = Number(
      /tandem_refused_total\{edge="sip",reason="stateless_answer"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0,
    );
    const dropped = Number(
      /tandem_refused_total\{edge="sip",reason="flood_dropped"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0,
    );
    assert.ok(answered > sent / 10, `strangers answered: ${answered} of ${sent} (${dropped} dropped by the node)`);
  });
});
