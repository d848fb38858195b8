// An admin API flood must not cost a node its place in the cluster: 10,000
// requests over HTTPS (a viewer token's cluster snapshots, each on a new
// connection with a full TLS handshake)
// from another process at one node of a NATS cluster; the other node must
// never find it silent (no "unreachable", no "down"), and the node keeps
// answering its operator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'node:https';
import { OPERATOR_TOKEN, VIEWER_TOKEN } from '../helpers/admin.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';
import { start } from '../helpers/proc.ts';

describe('an admin API flood does not silence a node', () => {
  const cluster = useNatsNodes({
    name: 'admflood',
    nodes: ['cm1', 'cm2'],
    logLevel: 'info',
    adminTls: true,
    config: `
media_resources:
  XC2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
`,
  });

  /** the operator's own request, from another address than the flood's */
  const operatorGet = (path: string) =>
    new Promise<number>((resolve) => {
      const [host, port] = cluster.admin.cm1!.split(':');
      const req = request(
        {
          host,
          port: Number(port),
          path,
          localAddress: '127.0.0.9',
          rejectUnauthorized: false,
          agent: false,
          headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end();
    });

  it('10,000 requests at cm1: cm2 never loses sight of it; the operator is answered meanwhile', async (t) => {
    const flood = start('node', [
      '--import',
      'tsx',
      'test/helpers/httpFlood.ts',
      `https://${cluster.admin.cm1}/api/cluster`,
      '10000',
      '200',
      VIEWER_TOKEN,
    ]);
    const slowest: number[] = [];
    let finished = false;
    const done = flood.waitFor(/done (\d+) statuses (.*)/, 120_000).finally(() => (finished = true));
    while (!finished) {
      const t0 = Date.now();
      slowest.push((await operatorGet('/api/nodes')) === 200 ? Date.now() - t0 : Infinity);
      await new Promise((r) => setTimeout(r, 200));
    }
    const [, count, statuses] = await done;
    assert.equal(Number(count), 10_000);
    const out = cluster.procs.get('cm2')!.output();
    assert.doesNotMatch(
      out,
      /"peer":"cm1"[^\n]*"msg":"node (unreachable|down)"|"msg":"node (unreachable|down)"[^\n]*"peer":"cm1"/,
      'cm2 never found cm1 silent',
    );
    const answered = slowest.filter((ms) => ms !== Infinity).length;
    assert.ok(
      answered >= slowest.length * 0.9,
      `the operator's requests: ${answered} of ${slowest.length} answered; flood statuses ${statuses}`,
    );
    t.diagnostic(
      `operator answered ${answered} of ${slowest.length}, slowest ${Math.max(...slowest)} ms; flood ${statuses}`,
    );
  });
});
