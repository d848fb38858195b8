// The admin API refuses strangers: tokens and roles, owners and leases of
// API allocations, per-client limits and write rate limits, load shedding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_YAML, OPERATOR_TOKEN, VIEWER_TOKEN, withTestAdmin } from '../helpers/admin.ts';
import { freePort } from '../helpers/ports.ts';
import { start } from '../helpers/proc.ts';
import { NODES, eventually, startCluster, useCluster } from '../helpers/cluster.ts';

const CONFIG = `${NODES}
${ADMIN_YAML}
  write_rate_per_min: 40
  max_allocations_per_client: 3
  lease_max_s: 2
media_resources:
  X2:  { type: transcoder, node: cm2, capacity: 50, codecs: [PCMU, PCMA] }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: p, device_pool: DP }
`;

describe('admin API security', () => {
  const fx = useCluster(CONFIG, { admin: true });
  const call = async (path: string, token: string | undefined, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    const res = await fetch(fx.cluster.node('cm1').admin!.url + path, { ...init, headers });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    };
  };
  const allocate = (token: string, body: Record<string, unknown> = {}) =>
    call('/api/allocations', token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '1001', type: 'transcoder', ...body }),
    });
  const active = async () => {
    const r = await call('/api/resources', VIEWER_TOKEN);
    return (r.body as unknown as Array<{ name: string; active: number }>).find((x) => x.name === 'X2')!.active;
  };

  it('answers 401 without a credential or with a wrong one on every route but /healthz', async () => {
    for (const path of [
      '/api/nodes',
      '/api/phones',
      '/api/resources',
      '/api/mrgls',
      '/api/kinds',
      '/api/allocations',
      '/api/calls',
      '/api/media',
      '/api/explain?phone=1001&type=mtp',
      '/api/whoami',
      '/api/config/text',
      '/api/config/versions',
      '/metrics',
    ]) {
      const none = await call(path, undefined);
      assert.equal(none.status, 401, path);
      assert.match(String(none.headers.get('www-authenticate')), /^Bearer/);
      assert.equal((await call(path, 'not-a-real-token-0123456789')).status, 401, path);
    }
    assert.equal(
      (
        await call('/api/allocations', undefined, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"phone":"1001","type":"transcoder"}',
        })
      ).status,
      401,
    );
    assert.equal((await call('/healthz', undefined)).status, 200);
    assert.equal(await active(), 0, 'nothing was allocated by the refused requests');
  });

  it('lets a viewer read but not write (403)', async () => {
    assert.equal((await call('/api/resources', VIEWER_TOKEN)).status, 200);
    // The console asks who it is to show write actions to operators only.
    const me = await call('/api/whoami', VIEWER_TOKEN);
    assert.deepEqual(me.body, { name: 'test-viewer', role: 'viewer' });
    assert.equal((await call('/api/config/text', VIEWER_TOKEN)).status, 403, 'the text holds passwords');
    assert.equal(
      (
        await call('/api/config/check', VIEWER_TOKEN, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"yaml":"a: 1"}',
        })
      ).status,
      403,
    );
    const w = await allocate(VIEWER_TOKEN);
    assert.equal(w.status, 403);
    assert.match(String(w.body.error), /viewer/);
    assert.equal((await call('/api/allocations/x', VIEWER_TOKEN, { method: 'DELETE' })).status, 403);
    assert.equal(await active(), 0);
  });

  it('records the owner, caps allocations per client and releases them when their lease ends', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await allocate(OPERATOR_TOKEN, { lease_s: 60 });
      assert.equal(a.status, 201);
      assert.deepEqual(a.body.holder, { client: 'test-operator' });
      // lease_s is capped at admin.lease_max_s (2 s here)
      assert.ok(Number(a.body.expires_at) - Date.now() <= 2000);
      ids.push(String(a.body.id));
    }
    const over = await allocate(OPERATOR_TOKEN);
    assert.equal(over.status, 429);
    assert.match(String(over.body.error), /already holds 3/);
    assert.equal(await active(), 3);
    await eventually(async () => (await active()) === 0, 5000, 'leases to expire');
    assert.equal((await call('/api/allocations', VIEWER_TOKEN)).body.length, 0);
    assert.equal((await call(`/api/allocations/${ids[0]}`, OPERATOR_TOKEN, { method: 'DELETE' })).status, 404);
  });

  it('rate-limits writes per client', async () => {
    let limited = 0;
    for (let i = 0; i < 60; i++) {
      const r = await call('/api/allocations/none', OPERATOR_TOKEN, { method: 'DELETE' });
      if (r.status === 429) limited++;
      else assert.equal(r.status, 404);
    }
    // 40 per minute, and the lease test above already spent some
    assert.ok(limited >= 20, `${limited} of 60 writes limited`);
    // reads are not limited
    assert.equal((await call('/api/resources', OPERATOR_TOKEN)).status, 200);
  });
});

describe('admin API under a flood (cluster in its own process)', () => {
  it('sheds load with 503 + Retry-After; no node is declared down meanwhile', async () => {
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = withTestAdmin(`
cluster: { name: flood, heartbeat_ms: 250, node_down_after_ms: 1000 }
nodes:
  cm1: { sip: "127.0.0.1:${await freePort()}", admin: "${admin}" }
  cm2: { sip: "127.0.0.1:${await freePort()}", admin: "127.0.0.1:${await freePort()}" }
media_resources:
  X2: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA] }
`);
    const file = join(mkdtempSync(join(tmpdir(), 'tandem-flood-')), 'flood.yaml');
    writeFileSync(file, yaml);
    const node = start('node', ['--import', 'tsx', 'src/cli.ts', 'start', '-c', file, '--log-level', 'warn']);
    try {
      await node.waitFor(/2 call manager\(s\) up/, 20_000);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 400 });
      const get = () =>
        new Promise<[number, string | undefined]>((resolve) => {
          const req = http.get(
            {
              host: '127.0.0.1',
              port: Number(admin.split(':')[1]),
              path: '/api/resources',
              agent,
              headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve([res.statusCode ?? 0, res.headers['retry-after'] as string | undefined]));
            },
          );
          req.on('error', () => resolve([0, undefined]));
        });
      const results = await Promise.all(Array.from({ length: 10_000 }, get));
      agent.destroy();
      const shed = results.filter(([s]) => s === 503);
      const ok = results.filter(([s]) => s === 200);
      assert.ok(shed.length > 0, 'some requests were shed');
      assert.ok(ok.length > 0, 'some requests were served');
      assert.ok(
        shed.every(([, ra]) => ra === '1'),
        'every 503 says when to retry',
      );
      assert.equal(results.length - shed.length - ok.length, 0, 'only 200 or 503');
      assert.doesNotMatch(node.output(), /node down/, 'no node was declared down during the flood');
      node.kill('SIGTERM');
      assert.equal(await node.exited(), 0);
    } finally {
      node.kill('SIGKILL');
    }
  });
});

describe('admin API over TLS', () => {
  it('serves HTTPS with the configured certificate and still wants a token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-admin-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const cluster = await startCluster(
      `${NODES}
${ADMIN_YAML}
  tls: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }
`,
      { admin: true, nodes: ['cm1'] },
    );
    try {
      const url = cluster.node('cm1').admin!.url!;
      assert.match(url, /^https:/);
      const ca = readFileSync(join(dir, 'cert.pem'));
      const get = (token?: string) =>
        new Promise<number>((resolve, reject) => {
          const u = new URL(`${url}/api/nodes`);
          https
            .get(
              {
                host: u.hostname,
                port: u.port,
                path: u.pathname,
                ca,
                headers: token ? { authorization: `Bearer ${token}` } : {},
              },
              (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
              },
            )
            .on('error', reject);
        });
      assert.equal(await get(), 401);
      assert.equal(await get(VIEWER_TOKEN), 200);
      // plain HTTP on the same port gets no API
      await assert.rejects(fetch(`${url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(3000) }));
    } finally {
      await cluster.stop();
    }
  });
});
