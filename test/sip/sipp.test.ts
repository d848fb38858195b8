// SIPp, the tool SIP operators test with, as a Tandem phone: it registers
// with Digest and places calls with Digest on the INVITE (writing the digest
// uri as the target host and port, not the Request-URI) through two nodes to
// a phone on the other; every call completes by SIPp's own count
// (bench/sipp/caller-digest.xml, the scenario bench:sip uses).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/ports.ts';
import { useSipCluster } from '../helpers/sipCluster.ts';

const CALLS = 10;

describe('SIPp calls through Tandem with Digest', () => {
  const fx = useSipCluster({
    nodes: ['cm1', 'cm2'],
    firstRtpPort: 47600,
    span: 100,
    config: () => `
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: sipp-secret, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b, device_pool: DP, codecs: [PCMU] }
`,
  });

  it(`${CALLS} calls from a SIPp caller (REGISTER and INVITE with Digest) to a phone on another node all complete`, async () => {
    const callee = await fx.phone('2001', 'b', 'cm2');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-sipp-'));
    const users = join(dir, 'users.csv');
    writeFileSync(users, 'SEQUENTIAL\n1001;2001\n');
    const [host, port] = fx.sip.cm1!.split(':') as [string, string];
    const local = await freePort();
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        'sipp',
        [
          `${host}:${port}`,
          '-sf',
          'bench/sipp/caller-digest.xml',
          '-inf',
          users,
          '-au',
          '1001',
          '-ap',
          'sipp-secret',
          '-m',
          String(CALLS),
          '-l',
          '1',
          '-r',
          '10',
          '-i',
          '127.0.0.1',
          '-p',
          String(local),
          '-mp',
          String(local + 2),
          '-timeout',
          '60s',
          '-timeout_error',
          '-trace_err',
          '-error_file',
          join(dir, 'errors.log'),
          '-nostdin',
        ],
        { timeout: 90_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    let errors = '';
    try {
      errors = readFileSync(join(dir, 'errors.log'), 'utf8').slice(-3000);
    } catch {
      // no errors file: no errors
    }
    assert.equal(r.code, 0, `sipp exit ${r.code}: ${errors}`);
    assert.equal(callee.received.filter((m) => m.method === 'INVITE').length, CALLS, 'the callee was called each time');
    for (const n of ['cm1', 'cm2'])
      assert.equal(fx.cluster.node(n).sip!.calls.calls().length, 0, `no call left on ${n}`);
  });
});
