// npm run bench:scale:sim [-- --nodes 100 --devices 1000 --procs 4 --servers 1 --rate 200 --seconds 10]
// bench:scale's simulation mode: what one machine cannot hold as node
// processes. N nodes of the cluster layer only (bus, liveness, mapping
// table, device processes, MRM: the code a node runs, minus SIP, media and
// the admin API) spread over P worker processes, each node with its own
// NATS connection and key. Reports: the time until every node sees every
// node up and can reach every device; cross-node allocation latency at a
// fixed offered rate (measured in the allocating node's process, so the
// orchestrator's IPC is not in it); the time a new mapping table entry takes
// to reach every node; memory per node; false downs.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { natsServerAuthorization } from '../src/cluster/natsPermissions.ts';
import { generateKeys } from '../src/cluster/nodeKeys.ts';
import { natsPorts, startNatsCluster, type NatsCluster } from './natsCluster.ts';
import { nodeName, phoneOf, simModel } from './scaleSim/model.ts';
import type { SimNodeStatus, SimReply, SimRequest } from './scaleSim/protocol.ts';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    devices: { type: 'string', default: '1000' },
    procs: { type: 'string', default: '4' },
    servers: { type: 'string', default: '1' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    /** give up on convergence after this many seconds */
    limit: { type: 'string', default: '600' },
  },
});
const N = Number(args.nodes);
const D = Number(args.devices);
const P = Math.min(Number(args.procs), N);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

/** A worker process and the replies it sends, awaited by kind. */
class Worker {
  private readonly waiting: Array<{ op: SimReply['op']; done: (r: SimReply) => void; fail: (e: Error) => void }> = [];
  readonly allocated = new Map<number, (r: Extract<SimReply, { op: 'allocated' }>) => void>();
  exitCode: number | null = null;
  constructor(
    readonly child: ChildProcess,
    readonly nodes: string[],
  ) {
    child.on('message', (m: SimReply) => {
      if (m.op === 'error') return void console.error(`worker (${nodes[0]}..): ${m.message}`);
      if (m.op === 'allocated') {
        this.allocated.get(m.id)?.(m);
        this.allocated.delete(m.id);
        return;
      }
      const i = this.waiting.findIndex((w) => w.op === m.op);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.done(m);
    });
    child.on('exit', (code) => {
      this.exitCode = code ?? 1;
      for (const w of this.waiting.splice(0)) w.fail(new Error(`worker (${nodes[0]}..) exited with ${this.exitCode}`));
    });
  }
  ask<K extends SimReply['op']>(
    req: SimRequest | undefined,
    op: K,
    timeoutMs = 60_000,
  ): Promise<Extract<SimReply, { op: K }>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`worker (${this.nodes[0]}..) did not answer ${op} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.push({
        op,
        done: (r) => {
          clearTimeout(t);
          resolve(r as Extract<SimReply, { op: K }>);
        },
        fail: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      if (req) this.child.send(req);
    });
  }
}

let natsLog: (() => string) | undefined;

async function main(): Promise<void> {
  console.log(
    `bench:scale:sim  ${N} nodes x ${D} devices in ${P} processes, ${args.servers} NATS server(s), ${os.cpus().length} cores (${os.cpus()[0]?.model}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  );
  const dir = mkdtempSync(join(os.tmpdir(), 'tandem-sim-'));
  const ports = await natsPorts(Number(args.servers));
  const model = simModel({ nodes: N, devices: D, busPorts: ports.client, baseDir: dir });
  const nats: NatsCluster = await startNatsCluster(
    dir,
    ports,
    natsServerAuthorization(model, generateKeys(model)),
    'sim',
  );
  natsLog = () => nats.servers.map((s) => s.output()).join('\n');
  const workers: Worker[] = [];
  const stop = () => {
    for (const w of workers) w.child.kill('SIGKILL');
    nats.stop();
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    const t0 = Date.now();
    for (let p = 0; p < P; p++) {
      const mine = Array.from({ length: N }, (_, i) => i)
        .filter((i) => i % P === p)
        .map(nodeName);
      const child = fork(
        join(import.meta.dirname, 'scaleSim', 'worker.ts'),
        [
          '--nodes',
          String(N),
          '--devices',
          String(D),
          '--ports',
          ports.client.join(','),
          '--dir',
          dir,
          '--run',
          mine.join(','),
        ],
        {
          // TANDEM_SIM_PROFILE=DIR writes each worker's CPU profile there when it stops.
          execArgv: [
            '--import',
            'tsx',
            '--max-old-space-size=8192',
            ...(process.env.TANDEM_SIM_PROFILE
              ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TANDEM_SIM_PROFILE}`]
              : []),
          ],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        },
      );
      workers.push(new Worker(child, mine));
    }
    const started = await Promise.all(workers.map((w) => w.ask(undefined, 'started', Number(args.limit) * 1000)));
    console.log(
      `started: every worker's nodes running after ${((Date.now() - t0) / 1000).toFixed(1)} s (slowest worker ${(Math.max(...started.map((s) => s.ms)) / 1000).toFixed(1)} s)`,
    );

    const status = async () =>
      (await Promise.all(workers.map((w) => w.ask({ op: 'status' }, 'status')))).flatMap((s) => s.nodes);
    let convergedMs = NaN;
    let last: SimNodeStatus[] = [];
    while (Date.now() - t0 < Number(args.limit) * 1000) {
      if (workers.some((w) => w.exitCode !== null)) throw new Error('a worker process exited');
      last = await status();
      if (last.length === N && last.every((s) => s.up === N && s.registered === s.needs)) {
        convergedMs = Date.now() - t0;
        break;
      }
      const ups = last.map((s) => s.up);
      const behind = last.filter((s) => s.entries < s.expects).length;
      console.log(
        `  ${((Date.now() - t0) / 1000).toFixed(0)} s: nodes seen up min ${Math.min(...ups)}/${N}; ${behind} of ${last.length} nodes still reading their part of the mapping table`,
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
    console.log(
      `converged: ${Number.isNaN(convergedMs) ? `NOT within ${args.limit} s` : `${(convergedMs / 1000).toFixed(1)} s after the first start`} (every node sees ${N} nodes up, holds its part of the mapping table (every phone, the devices of the nodes its MRGLs name), and reaches the ${D} devices of its phone's MRGL and every phone)`,
    );

    // What the cluster layer costs when nothing happens (heartbeats, liveness, table checks): CPU over 10 s.
    const cpu0 = await Promise.all(workers.map((w) => w.ask({ op: 'status' }, 'status')));
    await new Promise((r) => setTimeout(r, 10_000));
    const cpu1 = await Promise.all(workers.map((w) => w.ask({ op: 'status' }, 'status')));
    const idleShare = cpu1.reduce((n, s, i) => n + (s.cpuMs - cpu0[i]!.cpuMs), 0) / 10_000;
    console.log(
      `idle: the ${P} processes use ${(idleShare * 100).toFixed(0)} % of a core in all, ${((idleShare / N) * 100).toFixed(2)} % per node`,
    );

    // Cross-node allocations at a fixed offered rate, each released right after; node i's phone allocates on node i+1.
    const workerOf = new Map(workers.flatMap((w) => w.nodes.map((n) => [n, w] as const)));
    const lat: number[] = [];
    const errors = new Map<string, number>();
    let wrongNode = 0;
    const inflight: Promise<void>[] = [];
    const tAlloc = Date.now();
    for (let n = 0; n < RATE * SECONDS; n++) {
      const wait = tAlloc + (n * 1000) / RATE - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const i = n % N;
      const w = workerOf.get(nodeName(i))!;
      inflight.push(
        new Promise<void>((resolve) => {
          w.allocated.set(n, (r) => {
            if (r.error) errors.set(r.error.slice(0, 80), (errors.get(r.error.slice(0, 80)) ?? 0) + 1);
            else if (r.at !== nodeName((i + 1) % N)) wrongNode++;
            else lat.push(r.ms);
            resolve();
          });
          w.child.send({ op: 'allocate', id: n, node: nodeName(i), phone: phoneOf(i) } satisfies SimRequest);
        }),
      );
    }
    await Promise.all(inflight);
    console.log(
      `allocations: ${lat.length} of ${RATE * SECONDS} at ${RATE}/s offered on the next node; p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms` +
        (errors.size || wrongNode
          ? `; failed: ${JSON.stringify(Object.fromEntries(errors))}, elsewhere: ${wrongNode}`
          : ''),
    );

    // A mapping table change: cm1 opens a conference room; until every node has its entry.
    const name = 'conf-4242';
    const tPub = Date.now();
    workerOf.get('cm1')!.child.send({ op: 'publish', name } satisfies SimRequest);
    let seenMs = NaN;
    let seenBy = 0;
    while (Date.now() - tPub < 30_000) {
      await new Promise((r) => setTimeout(r, 250));
      const seen = await Promise.all(workers.map((w) => w.ask({ op: 'seen', name }, 'seen')));
      const times = seen.flatMap((s) => Object.values(s.at));
      seenBy = times.length;
      if (times.length === N) {
        seenMs = Math.max(...times) - tPub;
        break;
      }
    }
    console.log(
      `mapping table change (a conference room entry written by cm1): ${Number.isNaN(seenMs) ? `seen by ${seenBy} of ${N} nodes after 30 s` : `on every node after ${seenMs} ms`}`,
    );

    const final = await Promise.all(workers.map((w) => w.ask({ op: 'status' }, 'status')));
    const perNode = final.map((s) => s.rssMb / s.nodes.length);
    const downs = final.flatMap((s) => s.nodes).reduce((n, s) => n + s.downs, 0);
    console.log(
      `memory: ${final.map((s) => `${s.rssMb.toFixed(0)} MB`).join(', ')} per process; ${percentile(perNode, 50).toFixed(0)} MB per node; each node holds ${Math.min(...final.flatMap((s) => s.nodes.map((x) => x.entries)))} mapping table entries, ${percentile(
        final.flatMap((s) => s.nodes.map((x) => x.unchecked)),
        50,
      )} of them never used (signature not checked)`,
    );
    console.log(
      `false downs: ${downs} (no node was stopped); worker processes exited: ${workers.filter((w) => w.exitCode !== null).length}`,
    );
  } finally {
    // (each worker stops its nodes gracefully and exits: its CPU profile, when asked for, is written then)
    await Promise.all(
      workers.map((w) =>
        w.exitCode !== null
          ? undefined
          : new Promise<void>((resolve) => {
              w.child.once('exit', () => resolve());
              w.child.send({ op: 'stop' } satisfies SimRequest);
              setTimeout(resolve, 30_000).unref();
            }),
      ),
    );
    stop();
  }
}

main().catch((err: unknown) => {
  if (natsLog) console.error(`nats-server's last words:\n${natsLog().slice(-3000)}`);
  console.error(err);
  process.exit(1);
});
