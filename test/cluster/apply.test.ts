// tandem apply on a running NATS cluster (two node processes) while a call
// through a transcoder is up: the new version is applied in place by both
// nodes; the transcoder removed from the config drains (the call keeps it,
// its audio goes on) and is gone once the call ends; the transcoder added
// takes the next allocation. A refused version leaves the running one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { OPERATOR_TOKEN, VIEWER_TOKEN, adminFetch } from '../helpers/admin.ts';
import { readWav, toneShare } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

const run = promisify(execFile);

describe('tandem apply on a running NATS cluster', () => {
  const phones: Baresip[] = [];
  const version = (devices: string, group: string, head: string = fx.head): string => `${head}
media_resources:
${devices}
media_resource_groups:
  MRG: { devices: [${group}] }
media_resource_group_lists:
  MRGL: [MRG]
device_pools:
  DP: { mrgl: MRGL }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b2, device_pool: DP, codecs: [PCMA] }
`;
  const fx = useNatsNodes({
    name: 'applied',
    nodes: ['cm1', 'cm2'],
    rtp: true,
    config: version('  XC1: { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA] }', 'XC1', ''),
  });
  const { admin, sip } = fx;
  const dir = fx.dir;
  const apply = (f: string) =>
    run(process.execPath, [
      '--import',
      'tsx',
      'src/cli.ts',
      'apply',
      '-c',
      f,
      '-a',
      `http://${admin.cm1}`,
      '--token',
      OPERATOR_TOKEN,
    ]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
  const resources = async () =>
    (await (await adminFetch(`http://${admin.cm1}/api/resources`)).json()) as Array<{
      name: string;
      active: number | null;
      draining: boolean | null;
    }>;
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
  });

  it('adds a transcoder and drains a removed one while a call through it goes on', async () => {
    const a = await Baresip.start({
      number: '1001',
      password: 'a1',
      registrar: sip.cm1!,
      toneHz: 500,
      codecs: ['PCMU'],
    });
    const b = await Baresip.start({
      number: '2001',
      password: 'b2',
      registrar: sip.cm2!,
      toneHz: 700,
      codecs: ['PCMA'],
    });
    phones.push(a, b);
    assert.equal((await a.registration()).status, 200);
    assert.equal((await b.registration()).status, 200);
    await eventually(
      async () => {
        const list = (await (await adminFetch(`http://${admin.cm1}/api/phones`)).json()) as Array<{
          number: string;
          registered: boolean;
        }>;
        return list.find((p) => p.number === '2001')?.registered === true;
      },
      5000,
      'cm1 to see 2001',
    );
    await a.callUntilEstablished(b);
    await eventually(
      async () => (await resources()).find((r) => r.name === 'XC1')?.active === 1,
      5000,
      'the call on XC1',
    );
    const before = (await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as { version: string };

    // Version 2: XC1 removed, XC2 (on cm1) added.
    const v2 = join(dir, 'v2.yaml');
    writeFileSync(v2, version('  XC2: { type: transcoder, node: cm1, capacity: 2, codecs: [PCMU, PCMA] }', 'XC2'));
    const r = await apply(v2);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /cm1: applied/);
    assert.match(r.out, /cm2: applied/);
    assert.match(r.out, /added transcoder XC2/);
    assert.match(r.out, /removed XC1 \(draining until idle\)/);
    const cfg = (await (await adminFetch(`http://${admin.cm2}/api/config`)).json()) as {
      version: string;
      nodes: Array<{ node: string; version: string }>;
    };
    assert.notEqual(cfg.version, before.version);
    assert.ok(
      cfg.nodes.every((n) => n.version === cfg.version),
      `every node runs ${cfg.version}: ${JSON.stringify(cfg.nodes)}`,
    );

    // XC1 drains: still carrying the call on cm2, taking nothing new.
    const m2 = await (await adminFetch(`http://${admin.cm2}/metrics`)).text();
    assert.match(m2, /tandem_resource_active\{device="XC1",type="transcoder",node="cm2"\} 1/);
    assert.match(m2, /tandem_resource_available\{device="XC1",type="transcoder",node="cm2"\} 0/);

    // The next allocation takes XC2.
    const alloc = await adminFetch(`http://${admin.cm1}/api/allocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '1001', type: 'transcoder', codecs: ['PCMU', 'PCMA'] }),
    });
    assert.equal(alloc.status, 201);
    assert.equal(((await alloc.json()) as { resource: string }).resource, 'XC2');

    // The call keeps XC1 and its audio goes on; XC1 goes once the call ends.
    await new Promise((res) => setTimeout(res, 2500));
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000);
    await new Promise((res) => setTimeout(res, 300));
    for (const [p, far] of [
      [a, 700],
      [b, 500],
    ] as const) {
      const pcm = readWav(p.recordings().at(-1)!);
      const tail = pcm.samples.subarray(pcm.samples.length - pcm.rate, pcm.samples.length - pcm.rate / 5);
      assert.ok(toneShare(tail, pcm.rate, far) > 0.5, `${p.opts.number} still hears ${far} Hz after the change`);
    }
    assert.ok(!(await resources()).some((r) => r.name === 'XC1'), 'XC1 is not in the configuration any more');
    await eventually(
      async () => !(await (await adminFetch(`http://${admin.cm2}/metrics`)).text()).includes('device="XC1"'),
      5000,
      'XC1 gone from cm2 once idle',
    );
    const metrics = await (await adminFetch(`http://${admin.cm2}/metrics`)).text();
    assert.match(metrics, new RegExp(`tandem_config_info\\{version="${cfg.version}",node="cm2"\\} 1`));
  });

  it('refuses a version that changes a restart-only section or is invalid, naming the paths; the running version stays', async () => {
    const running = ((await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as { version: string })
      .version;
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      version('  XC2: { type: transcoder, node: cm1, capacity: 2, codecs: [PCMU, PCMA] }', 'XC2').replace(
        'heartbeat_ms: 250',
        'heartbeat_ms: 300',
      ),
    );
    const r = await apply(bad);
    assert.equal(r.code, 1);
    assert.match(r.out, /cluster: cannot change while the cluster runs/);
    const invalid = join(dir, 'invalid.yaml');
    writeFileSync(invalid, version('  XC2: { type: transcoder, node: cm1, capacity: 2, codecs: [PCMU, PCMA] }', 'XC9'));
    const r2 = await apply(invalid);
    assert.equal(r2.code, 1);
    assert.match(r2.out, /media_resource_groups\.MRG\.devices\[0\]: unknown media resource "XC9"/);
    assert.equal(
      ((await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as { version: string }).version,
      running,
    );
    // Only an operator may change the configuration; nobody reads it back (it holds phone passwords).
    const body = JSON.stringify({ yaml: readFileSync(invalid, 'utf8') });
    const post = (headers: Record<string, string>) =>
      fetch(`http://${admin.cm1}/api/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: `Bearer ${VIEWER_TOKEN}` })).status, 403);
    const shown = (await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as {
      version: string;
      nodes: Array<Record<string, unknown>>;
    };
    assert.deepEqual(Object.keys(shown).sort(), ['nodes', 'version'], 'GET /api/config gives versions only');
    assert.ok(shown.nodes.every((n) => Object.keys(n).sort().join() === 'node,up,version'));
  });

  it('reads media files only from the media directory: paths outside are refused with one answer whether they exist or not; an alias bomb is a 400', async () => {
    const running = ((await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as { version: string })
      .version;
    symlinkSync('/etc/passwd', join(dir, 'linked.wav'));
    const answers: string[] = [];
    for (const source of [
      '/etc/passwd',
      '../../../../../../etc/passwd',
      '/etc/nope-does-not-exist',
      '../nope-does-not-exist.wav',
      'linked.wav',
      '/proc/self/environ',
    ]) {
      const yaml = version(
        `  XC1: { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA] }\n  M: { type: moh, node: cm1, capacity: 2, audio_sources: { "1": "${source}" } }`,
        'XC1',
      );
      const res = await adminFetch(`http://${admin.cm1}/api/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ yaml }),
      });
      assert.equal(res.status, 400, source);
      const body = (await res.json()) as { problems: Array<{ path: string; message: string }> };
      assert.deepEqual(
        body.problems.map((p) => p.path),
        ['media_resources.M.audio_sources.1'],
        source,
      );
      answers.push(body.problems[0]!.message);
    }
    assert.equal(new Set(answers).size, 1, `one answer for every path outside: ${[...new Set(answers)].join(' | ')}`);
    assert.match(answers[0]!, /outside the media directory/);
    assert.ok(!answers[0]!.includes('/etc'), 'the answer does not echo the path');
    // A billion laughs: 9^10 expansions of a few aliases.
    let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 10; i++)
      bomb += `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    const res = await adminFetch(`http://${admin.cm1}/api/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ yaml: bomb + fx.head }),
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Excessive alias count/);
    assert.equal(
      ((await (await adminFetch(`http://${admin.cm1}/api/config`)).json()) as { version: string }).version,
      running,
    );
  });

  it("keeps every version each node ran, with who applied it; the editor's check shows problems, changes per node and a diff; rollback applies an earlier version everywhere; texts only for operators", async () => {
    const get = async <T>(node: string, path: string, token?: string) => {
      const res = await adminFetch(
        `http://${admin[node]}${path}`,
        token ? { headers: { authorization: `Bearer ${token}` } } : {},
      );
      return { status: res.status, body: (await res.json()) as T };
    };
    const post = async <T>(node: string, path: string, body: unknown) => {
      const res = await adminFetch(`http://${admin[node]}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    };
    type Listed = Array<{ version: string; by: string; applied_at: number; running: boolean }>;
    // Any node has the cluster's history: newest first, the file the nodes started with at the end.
    const listed = (await get<Listed>('cm2', '/api/config/versions')).body;
    assert.ok(listed.length >= 2, JSON.stringify(listed));
    assert.equal(listed[0]!.running, true);
    assert.equal(listed[0]!.by, 'test-operator', 'who applied the running version');
    const first = listed.at(-1)!;
    assert.equal(first.by, '(file)');
    assert.ok(!('text' in listed[0]!), 'the list carries no texts');
    // The texts hold passwords: operators only.
    assert.equal((await get('cm1', '/api/config/text', VIEWER_TOKEN)).status, 403);
    assert.equal((await get('cm1', `/api/config/versions/${first.version}`, VIEWER_TOKEN)).status, 403);
    const running = (await get<{ version: string; text: string }>('cm1', '/api/config/text')).body;
    assert.equal(running.version, listed[0]!.version);
    assert.match(running.text, /XC2: \{ type: transcoder, node: cm1, capacity: 2/, 'the text as the operator wrote it');
    const old = (await get<{ text: string }>('cm2', `/api/config/versions/${first.version}`)).body;
    assert.match(old.text, /XC1: \{ type: transcoder, node: cm2, capacity: 1/);

    // The editor's check: a bad value named with its path; a good one with what each node would do, and the diff.
    type Check = {
      ok: boolean;
      problems: Array<{ path: string }>;
      changes: Array<{ node: string; changes: string[] }>;
      diff: string;
    };
    const bad = await post<Check>('cm1', '/api/config/check', {
      yaml: running.text.replace('capacity: 2', 'capacity: sixteen'),
    });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.ok, false);
    assert.deepEqual(
      bad.body.problems.map((p) => p.path),
      ['media_resources.XC2.capacity'],
    );
    const good = await post<Check>('cm1', '/api/config/check', {
      yaml: running.text.replace('capacity: 2', 'capacity: 3'),
    });
    assert.equal(good.body.ok, true, JSON.stringify(good.body.problems));
    assert.match(good.body.changes.find((c) => c.node === 'cm1')!.changes.join(';'), /XC2/);
    assert.deepEqual(good.body.changes.find((c) => c.node === 'cm2')!.changes, [], 'cm2 hosts nothing that changes');
    assert.match(good.body.diff, /^-.*capacity: 2/m);
    assert.match(good.body.diff, /^\+.*capacity: 3/m);

    // Rollback to the file's version: every node applies it, and it is the running one again.
    assert.equal((await post('cm1', '/api/config/rollback', { version: 'feedbeef' })).status, 404);
    const back = await post<{ version: string; nodes: Array<{ node: string; status: string }> }>(
      'cm1',
      '/api/config/rollback',
      { version: first.version },
    );
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal(back.body.version, first.version);
    assert.deepEqual(
      back.body.nodes.map((n) => n.status),
      ['applied', 'applied'],
    );
    const cfg = (await get<{ nodes: Array<{ version: string }> }>('cm2', '/api/config')).body;
    assert.ok(
      cfg.nodes.every((n) => n.version === first.version),
      JSON.stringify(cfg.nodes),
    );
    const after = (await get<Listed>('cm2', '/api/config/versions')).body;
    assert.equal(after[0]!.version, first.version);
    assert.equal(after[0]!.by, 'test-operator', "the rollback is the operator's");
    assert.ok(
      (await resources()).some((r) => r.name === 'XC1'),
      'XC1 is back',
    );
    assert.equal((await post('cm1', '/api/config/rollback', { version: first.version })).status, 409);
    // Kept on disk beside the config, owner-only (the texts hold passwords).
    const kept = join(dir, '.tandem', 'applied-cm2.config-versions.json');
    assert.equal(statSync(kept).mode & 0o777, 0o600);
    assert.ok((JSON.parse(readFileSync(kept, 'utf8')) as unknown[]).length >= 2);
  });
});

describe('tandem apply when a node hangs, on a cluster with slow requests', () => {
  // request_timeout_ms 2000 (a WAN cluster's): apply waits up to 20 s for a
  // node. A node that hangs (stopped, not down) makes the apply that long;
  // the operator must get the answer naming it, not a socket closed by the
  // admin server's idle timer halfway through.
  const fx = useNatsNodes({
    name: 'hung',
    nodes: ['cm1', 'cm2'],
    cluster: 'request_timeout_ms: 2000',
    config: `media_resources:
  XC1: { type: transcoder, node: cm2, capacity: 1, codecs: [PCMU, PCMA] }
`,
  });

  it("answers after the hung node's full wait, naming it unreachable", async () => {
    const cm2 = fx.procs.get('cm2')!.child;
    const text = ((await (await adminFetch(`http://${fx.admin.cm1}/api/config/text`)).json()) as { text: string }).text;
    const next = text.replace('capacity: 1', 'capacity: 2');
    assert.notEqual(next, text, 'a change to apply');
    cm2.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      const res = await adminFetch(`http://${fx.admin.cm1}/api/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ yaml: next }),
        signal: AbortSignal.timeout(60_000),
      });
      const body = (await res.json()) as { nodes: Array<{ node: string; status: string }> };
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.ok(Date.now() - t0 >= 15_000, 'the wait outlasted a socket idle period');
      const status = Object.fromEntries(body.nodes.map((n) => [n.node, n.status]));
      assert.deepEqual(status, { cm1: 'applied', cm2: 'unreachable' });
    } finally {
      cm2.kill('SIGCONT');
    }
  });
});
