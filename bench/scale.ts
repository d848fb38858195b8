// npm run bench:scale [-- --nodes 20 --devices 50 --phones 100 --servers 3 --rate 200 --seconds 10]
// K call managers as K OS processes (the compiled bin/tandem.js, as in
// production) over a NATS cluster of 1 or 3 servers on this machine, each
// with its own node key and NATS user (tandem nats-setup's config). Reports:
// the time until every node sees every node up and every device registered;
// cross-node allocation latency at a fixed offered rate (admin API, each
// phone's MRGL pointing at the next node's devices); the time from `tandem
// apply` of one new device until every node can allocate it; memory per
// node; and false downs (a "node down" logged while every node was alive).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../src/config/load.ts';
import { bucketName, inboxPrefix, natsServerAuthorization } from '../src/cluster/natsPermissions.ts';
import { generateKeys, loadKeys } from '../src/cluster/nodeKeys.ts';

import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { ADMIN_YAML, OPERATOR_TOKEN, adminFetch } from '../test/helpers/admin.ts';
import { natsPorts, startNatsCluster } from './natsCluster.ts';
import { freePort } from '../test/helpers/ports.ts';
import { start, type Proc } from '../test/helpers/proc.ts';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    devices: { type: 'string', default: '50' },
    phones: { type: 'string', default: '100' },
    servers: { type: 'string', default: '3' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    /** ms between two node starts */
    stagger: { type: 'string', default: '250' },
    /** write a CPU profile of this node (node --cpu-prof) into the bench's temp dir */
    profile: { type: 'string' },
  },
});
const K = Number(args.nodes);
const D = Number(args.devices);
const P = Number(args.phones);
const S = Number(args.servers);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);

const dir = mkdtempSync(join(os.tmpdir(), 'tandem-scale-'));
const file = join(dir, 'cluster.yaml');
const nodeName = (i: number) => `cm${i + 1}`;
const procs: Proc[] = [];
const servers: Proc[] = [];
const stopAll = () => {
  for (const p of [...procs, ...servers]) p.kill('SIGKILL');
};
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

async function main(): Promise<void> {
  console.log(
    `bench:scale  ${K} nodes x ${D} devices x ${P} phones, ${S} NATS server(s), ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  );
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
  const ports = await natsPorts(S);
  const busPorts = ports.client;
  const admin: string[] = [];
  let nodes = '';
  let devices = '';
  let groups = '';
  let lists = '';
  let pools = '';
  let phones = '';
  for (let i = 0; i < K; i++) {
    const n = nodeName(i);
    admin.push(`127.0.0.1:${await freePort()}`);
    nodes += `  ${n}: { sip: "127.0.0.1:${await freePort()}", admin: "${admin[i]}", bus: "${busPorts.map((_, j) => `nats://127.0.0.1:${busPorts[(i + j) % S]}`).join(',')}" }\n`;
    for (let d = 0; d < D; d++)
      devices += `  X${i}_${d}: { type: transcoder, node: ${n}, capacity: 1000, codecs: [PCMU, PCMA] }\n`;
    groups += `  G${i}: { devices: [${Array.from({ length: D }, (_, d) => `X${i}_${d}`).join(', ')}] }\n`;
    // Phones of node i allocate on node i+1: every allocation crosses the bus.
    lists += `  L${i}: [G${(i + 1) % K}]\n`;
    pools += `  DP${i}: { mrgl: L${i} }\n`;
    for (let p = 0; p < P; p++)
      phones += `  "${100000 + i * 1000 + p}": { node: ${n}, password: pw${i}x${p}, device_pool: DP${i} }\n`;
  }
  const base = (extraDevices: string) => `cluster:
  name: scale
  bus: ${busPorts.map((p) => `nats://127.0.0.1:${p}`).join(',')}
  request_timeout_ms: 1000
  nats: { kv_replicas: ${S === 3 ? 3 : 1} }
nodes:
${nodes}media_resources:
${devices}${extraDevices}media_resource_groups:
${groups}media_resource_group_lists:
${lists}device_pools:
${pools}phones:
${phones}${ADMIN_YAML}`;
  writeFileSync(file, base(''));
  const model = loadConfigFile(file);
  const auth = natsServerAuthorization(model, generateKeys(model));
  servers.push(...(await startNatsCluster(dir, ports, auth)).servers);

  const t0 = Date.now();
  for (let i = 0; i < K; i++) {
    const prof = args.profile === nodeName(i) ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'profile')}`] : [];
    procs.push(
      start('node', [...prof, 'bin/tandem.js', 'start', '-c', file, '--node', nodeName(i), '--log-level', 'warn']),
    );
    await new Promise((r) => setTimeout(r, Number(args.stagger)));
  }
  const api = async <T>(i: number, path: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const r = await adminFetch(`http://${admin[i]}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
    return { status: r.status, body: (await r.json().catch(() => ({}))) as T };
  };
  // Converged: every node sees every node up and can find every device (explain from its own phone finds the next node's devices).
  const converged = async (): Promise<boolean> => {
    for (let i = 0; i < K; i++) {
      if (procs[i]!.child.exitCode !== null)
        throw new Error(`${nodeName(i)} exited: ${procs[i]!.output().slice(-800)}`);
      const nodesSeen = await api<Array<{ state: string }>>(i, '/api/nodes').catch(() => undefined);
      if (!nodesSeen || !Array.isArray(nodesSeen.body) || nodesSeen.body.filter((n) => n.state === 'up').length !== K)
        return false;
    }
    for (let i = 0; i < K; i++) {
      const ex = await api<{ steps: Array<{ verdict: string }> }>(
        i,
        `/api/explain?phone=${100000 + i * 1000}&type=transcoder`,
      ).catch(() => undefined);
      if (!ex || ex.body.steps.filter((s) => s.verdict === 'not_registered').length > 0) return false;
    }
    return true;
  };
  let convergedMs = NaN;
  while (Date.now() - t0 < 300_000) {
    if (
      await converged().catch((e: Error) => {
        console.log(e.message);
        return false;
      })
    ) {
      convergedMs = Date.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const startedAllMs = K * Number(args.stagger);
  console.log(
    `converged: ${Number.isNaN(convergedMs) ? 'NOT within 300 s' : `${(convergedMs / 1000).toFixed(1)} s after the first start (${(startedAllMs / 1000).toFixed(1)} s of staggered starts)`}`,
  );

  // What the cluster costs when nothing happens: CPU per node over 10 s of idle (heartbeats, liveness, reconciliation).
  const cpu = () =>
    procs.map((p, i) => {
      try {
        const f = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return Number(f[11]) + Number(f[12]); // clock ticks (USER_HZ = 100)
      } catch {
        // (a node that exited is reported with the others at the end, not a reason to stop measuring)
        console.log(`${nodeName(i)} is gone (exit code ${p.child.exitCode}): ${p.output().slice(-400)}`);
        return NaN;
      }
    });
  const c0 = cpu();
  console.log(`idle window starts at ${Date.now()}`);
  await new Promise((r) => setTimeout(r, 10_000));
  const idle = cpu()
    .map((c, i) => (c - c0[i]!) / 100 / 10)
    .filter((x) => !Number.isNaN(x));
  console.log(
    `idle CPU per node: median ${(percentile(idle, 50) * 100).toFixed(1)} % of a core, max ${(Math.max(...idle) * 100).toFixed(1)} %`,
  );

  // Cross-node allocations at a fixed offered rate, each released right after.
  const lat: number[] = [];
  let failed = 0;
  const inflight: Promise<void>[] = [];
  const tAlloc = Date.now();
  for (let n = 0; n < RATE * SECONDS; n++) {
    const due = tAlloc + (n * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const i = n % K;
    inflight.push(
      (async () => {
        const s = performance.now();
        const r = await api<{ id?: string; node?: string }>(i, '/api/allocations', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ phone: String(100000 + i * 1000 + (n % P)), type: 'transcoder' }),
        }).catch(() => undefined);
        if (r?.status !== 201 || r.body.node !== nodeName((i + 1) % K)) return void failed++;
        lat.push(performance.now() - s);
        await api(i, `/api/allocations/${r.body.id}`, { method: 'DELETE' }).catch(() => undefined);
      })(),
    );
  }
  await Promise.all(inflight);
  console.log(
    `allocations: ${lat.length} of ${RATE * SECONDS} at ${RATE}/s offered (${failed} failed); latency through the admin API p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms`,
  );

  // tandem apply of one more device on cm1: until every node's explain (from the phones that use cm1's devices) finds it.
  writeFileSync(
    file,
    base(`  XNEW: { type: transcoder, node: cm1, capacity: 10, codecs: [PCMU, PCMA] }\n`).replace(
      `  G0: { devices: [`,
      `  G0: { devices: [XNEW, `,
    ),
  );
  const tApply = Date.now();
  try {
    execFileSync(
      'node',
      ['bin/tandem.js', 'apply', '-c', file, '--admin', `http://${admin[0]}`, '--token', OPERATOR_TOKEN],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    console.log(
      `tandem apply failed: ${String(e.stderr ?? '').trim()} ${String(e.stdout ?? '')
        .trim()
        .slice(0, 500)}`,
    );
  }
  const appliedMs = Date.now() - tApply;
  let visibleMs = NaN;
  while (Date.now() - tApply < 60_000) {
    const ex = await api<{ steps: Array<{ device: string; verdict: string }> }>(
      K - 1,
      `/api/explain?phone=${100000 + (K - 1) * 1000}&type=transcoder`,
    ).catch(() => undefined);
    if (ex?.body.steps.some((s) => s.device === 'XNEW' && s.verdict === 'would_allocate')) {
      visibleMs = Date.now() - tApply;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(
    `tandem apply of one device: applied on every node in ${appliedMs} ms; allocatable from ${nodeName(K - 1)} ${Number.isNaN(visibleMs) ? 'NOT within 60 s' : `after ${visibleMs} ms`}`,
  );

  const rss = procs.map((p) => {
    const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  });
  console.log(
    `memory per node (RSS): median ${percentile(rss, 50).toFixed(0)} MB, max ${Math.max(...rss).toFixed(0)} MB`,
  );
  const falseDowns = procs.reduce((n, p) => n + (p.output().match(/"msg":"node down"/g)?.length ?? 0), 0);
  const exited = procs.filter((p) => p.child.exitCode !== null).length;
  console.log(`false downs: ${falseDowns} (no node was stopped); processes exited: ${exited}`);
  // How many writes the mapping table took (its stream's last sequence) against how many entries it holds.
  const nc = await connect({
    servers: `nats://127.0.0.1:${busPorts[0]}`,
    authenticator: nkeyAuthenticator(loadKeys(model, 'cm1').identity.seed),
    inboxPrefix: inboxPrefix('cm1'),
  });
  const st = await (await new Kvm(nc).open(bucketName(model))).status();
  const reads = await Promise.all(
    procs
      .map(async (_, i) => {
        const text = await (await adminFetch(`http://${admin[i]}/metrics`)).text();
        return Number(/^tandem_mapping_table_reads_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
      })
      .map((p) => p.catch(() => NaN)),
  );
  const read = reads.filter((r) => !Number.isNaN(r));
  const unread = reads.length - read.length;
  console.log(
    `mapping table: ${st.values} entries, ${st.streamInfo.state.last_seq} writes; values read per node: median ${percentile(read, 50)}, max ${Math.max(...read)}${unread ? ` (${unread} nodes' /metrics not read)` : ''}`,
  );
  await nc.close();
  if (args.profile) {
    const p = procs[Number(args.profile.slice(2)) - 1]!;
    p.kill('SIGTERM');
    await p.exited();
    console.log(`CPU profile of ${args.profile}: ${join(dir, 'profile')}`);
  }
  stopAll();
}

main().catch((err: unknown) => {
  console.error(err);
  stopAll();
  process.exit(1);
});
