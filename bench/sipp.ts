// npm run bench:sip -- [--rates 200,400,800] [--seconds 15] [--pairs 500] [--nodes 2] [--bus memory|nats] [--transcode] [--max-setups N] [--max-queue-delay MS] [--search] [--warmup 5]
// Open-loop call setups with SIPp, the tool SIP operators test with: a fixed
// offered rate (calls/s), each call INVITE, 200, ACK, 0.5 s, BYE, 200. The
// shape of issue 20: the embedded cluster in one process (`tandem start`,
// memory bus), callers on cm1 and callees on cm2 (`--nodes 1`: both on
// cm1), every call crossing the bus; N caller/callee pairs registered with
// Digest beforehand (from SIPp's addresses), INVITEs not challenged
// (`sip.authenticate_invites: false`: SIPp can answer one user's challenge
// per process only). Baseline in the same run: SIPp's caller straight to
// SIPp's callee at the same rates. Reported per rate: calls completed and
// failed, setup time (INVITE to 200) p50/p99 from SIPp's own response-time
// log, INVITE retransmissions, and Tandem's overload refusals (503).
// `--bus nats`: the two nodes as two processes over one nats-server, each
// with its node key and NATS user (tandem nats-setup's authorization), as in
// production. `--transcode`: the callees take PCMA only, so every call
// allocates a transcoder (on cm2, through the MRM's walk; no media flows: the
// nodes have no RTP range, so the allocation is the signalling work alone).
import { execFile, execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { digestResponse } from '../src/sip/digest.ts';
import { SipHeaders, serialize } from '../src/sip/message.ts';
import { parseSip } from '../src/sip/parser.ts';
import { loadConfigFile } from '../src/config/load.ts';
import { generateKeys } from '../src/cluster/nodeKeys.ts';
import { natsServerAuthorization } from '../src/cluster/natsPermissions.ts';
import { ADMIN_YAML } from '../test/helpers/admin.ts';
import { natsPorts, startNatsCluster } from './natsCluster.ts';
import { freePort } from '../test/helpers/ports.ts';
import { start, type Proc } from '../test/helpers/proc.ts';
import { type CpuProfile, topFunctions } from './profileTop.ts';

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '200,400,800' },
    seconds: { type: 'string', default: '15' },
    pairs: { type: 'string', default: '500' },
    nodes: { type: 'string', default: '2' },
    // admission settings of the nodes (sip.max_setups_in_progress, sip.max_queue_delay_ms); the config's defaults otherwise
    'max-setups': { type: 'string' },
    'max-queue-delay': { type: 'string' },
    // search the capacity from the first of --rates (doubling, then bisecting), then 1.5x and 2x it
    search: { type: 'boolean', default: false },
    bus: { type: 'string', default: 'memory' },
    transcode: { type: 'boolean', default: false },
    // seconds of calls at half the first rate before anything is measured (a cold node's JIT and first allocations)
    warmup: { type: 'string', default: '5' },
    // write a CPU profile of the node process (cm1's, over NATS) and print where its time went
    profile: { type: 'boolean', default: false },
  },
});
const RATES = args.rates.split(',').map(Number);
const SECONDS = Number(args.seconds);
const PAIRS = Number(args.pairs);
const CALLEE_NODE = args.nodes === '1' ? 'cm1' : 'cm2';
if (args.bus !== 'memory' && args.bus !== 'nats') throw new Error(`--bus memory or nats, not ${args.bus}`);
const NATS = args.bus === 'nats';
const dir = mkdtempSync(join(os.tmpdir(), 'tandem-bench-sipp-'));
const procs: Proc[] = [];
const profileDir = join(dir, 'profile');
const profiled = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
let profiledNode: Proc | undefined;
/** the node processes, whose CPU time each trial reads */
const nodeProcs: Proc[] = [];
process.on('exit', () => procs.forEach((p) => p.kill('SIGKILL')));

const caller = (i: number) => String(100000 + i);
const callee = (i: number) => String(200000 + i);
const password = (n: string) => `pw-${n}`;

/** Registers numbers from one UDP socket (their contact), with Digest, a few at a time. */
async function registerAll(sock: Socket, port: number, target: string, numbers: string[]): Promise<void> {
  const [host, tport] = target.split(':') as [string, string];
  const waiting = new Map<string, (status: number, challenge: string[]) => void>();
  sock.on('message', (buf) => {
    const p = parseSip(buf);
    if (!p.ok || p.message.kind !== 'response') return;
    const key = `${p.message.headers.get('call-id')}|${p.message.headers.get('cseq')}`;
    waiting.get(key)?.(p.message.status, p.message.headers.getAll('www-authenticate'));
  });
  const send = (n: string, callId: string, cseq: number, auth?: string) =>
    new Promise<{ status: number; challenge: string[] }>((res, rej) => {
      const h = new SipHeaders();
      h.append('via', `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${callId}${cseq};rport`);
      h.append('max-forwards', '70');
      h.append('from', `<sip:${n}@${target}>;tag=${callId}`);
      h.append('to', `<sip:${n}@${target}>`);
      h.append('call-id', callId);
      h.append('cseq', `${cseq} REGISTER`);
      h.append('contact', `<sip:${n}@127.0.0.1:${port}>`);
      h.append('expires', '3600');
      if (auth) h.append('authorization', auth);
      const bytes = serialize({
        kind: 'request',
        method: 'REGISTER',
        uri: `sip:${target}`,
        headers: h,
        body: Buffer.alloc(0),
      });
      const key = `${callId}|${cseq} REGISTER`;
      const timer = setTimeout(() => {
        waiting.delete(key);
        rej(new Error(`no answer to REGISTER of ${n}`));
      }, 5000);
      waiting.set(key, (status, challenge) => {
        clearTimeout(timer);
        waiting.delete(key);
        res({ status, challenge });
      });
      sock.send(bytes, Number(tport), host);
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < numbers.length) {
        const n = numbers[next++]!;
        const callId = `reg${n}x${Math.random().toString(36).slice(2, 8)}`;
        const first = await send(n, callId, 1);
        const auth = digestResponse({
          user: n,
          password: password(n),
          method: 'REGISTER',
          uri: `sip:${target}`,
          challenge: first.challenge,
        });
        const ok = await send(n, callId, 2, auth);
        if (ok.status !== 200) throw new Error(`REGISTER of ${n}: ${ok.status}`);
      }
    }),
  );
}

async function bound(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
  return s;
}

interface Run {
  offered: number;
  completed: number;
  failed: number;
  p50: number;
  p99: number;
  retrans: number;
}

/** One SIPp caller run at `rate` for `seconds` (default --seconds) against `target`; SIPp's own counts and response times. */
function sipp(target: string, rate: number, port: number, pairsFile: string, seconds = SECONDS): Promise<Run> {
  const cwd = mkdtempSync(join(dir, `run-${rate}-`));
  const total = rate * seconds;
  return new Promise((res) => {
    execFile(
      'sipp',
      [
        target,
        '-sf',
        resolve('bench/sipp/caller.xml'),
        '-inf',
        pairsFile,
        '-r',
        String(rate),
        '-m',
        String(total),
        '-i',
        '127.0.0.1',
        '-p',
        String(port),
        '-mp',
        String(port + 2),
        '-l',
        '20000',
        '-timeout',
        `${seconds + 30}s`,
        '-nostdin',
        '-trace_stat',
        '-stf',
        join(cwd, 'stat.csv'),
        '-fd',
        '1',
        '-trace_rtt',
        '-rtt_freq',
        '1',
      ],
      { cwd, timeout: (seconds + 60) * 1000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && !/Test Terminated/.test(stdout))
          console.error(`sipp ${target} at ${rate}/s: ${err.message.split('\n')[0]} ${stderr.slice(-500)}`);
        const stat = readFileSync(join(cwd, 'stat.csv'), 'utf8').trim().split('\n');
        const head = stat[0]!.split(';');
        const last = stat.at(-1)!.split(';');
        const col = (name: string) => Number(last[head.indexOf(name)] ?? NaN);
        const rttFile = readdirSync(cwd).find((f) => f.endsWith('_rtt.csv'));
        const rtts = rttFile
          ? readFileSync(join(cwd, rttFile), 'utf8')
              .trim()
              .split('\n')
              .slice(1)
              .map((l) => Number(l.split(';')[1]))
              .filter((x) => Number.isFinite(x))
              .sort((a, b) => a - b)
          : [];
        const pct = (p: number) => rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))] ?? NaN;
        res({
          offered: total,
          completed: col('SuccessfulCall(C)'),
          failed: col('FailedCall(C)'),
          p50: pct(50),
          p99: pct(99),
          retrans: col('Retransmissions(C)'),
        });
      },
    );
  });
}

async function main(): Promise<void> {
  console.log(
    `bench:sip (SIPp, open loop)  rates ${RATES.join(', ')}/s for ${SECONDS} s, ${PAIRS} pairs, callees on ${CALLEE_NODE}, ${NATS ? 'two node processes over NATS' : 'one process, memory bus'}${args.transcode ? ', a transcoder in every call' : ''}; ${os.cpus().length} cores`,
  );
  // The compiled command, as a site runs it (not tsx): its costs, and a profile with the code's own lines.
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
  const sip1 = `127.0.0.1:${await freePort()}`;
  const sip2 = `127.0.0.1:${await freePort()}`;
  const adminPort = await freePort();
  let phones = '';
  for (let i = 0; i < PAIRS; i++) {
    phones += `  "${caller(i)}": { node: cm1, password: ${password(caller(i))}, device_pool: DP, codecs: [PCMU] }\n`;
    phones += `  "${callee(i)}": { node: ${CALLEE_NODE}, password: ${password(callee(i))}, device_pool: DP, codecs: [${args.transcode ? 'PCMA' : 'PCMU'}] }\n`;
  }
  const file = join(dir, 'cluster.yaml');
  const natsPort = NATS ? await natsPorts(1) : undefined;
  writeFileSync(
    file,
    `cluster: { name: benchsipp${natsPort ? `, bus: "nats://127.0.0.1:${natsPort.client[0]}"` : ''} }
${args.transcode ? `media_resources:\n  XC: { type: transcoder, node: cm2, capacity: 100000, codecs: [PCMU, PCMA] }\n` : ''}nodes:
  cm1: { sip: "${sip1}", admin: "127.0.0.1:${adminPort}" }
  cm2: { sip: "${sip2}", admin: "127.0.0.1:${await freePort()}" }
sip: { authenticate_invites: false${args['max-setups'] ? `, max_setups_in_progress: ${Number(args['max-setups'])}` : ''}${args['max-queue-delay'] ? `, max_queue_delay_ms: ${Number(args['max-queue-delay'])}` : ''} }
device_pools:
  DP: {}
phones:
${phones}${ADMIN_YAML}`,
  );
  if (natsPort) {
    const model = loadConfigFile(file);
    procs.push(
      ...(await startNatsCluster(dir, natsPort, natsServerAuthorization(model, generateKeys(model)), 'sipp')).servers,
    );
    for (const n of ['cm1', 'cm2']) {
      const node = start('node', [
        ...(n === 'cm1' ? profiled : []),
        'bin/tandem.js',
        'start',
        '-c',
        file,
        '--node',
        n,
        '--log-level',
        'warn',
      ]);
      procs.push(node);
      nodeProcs.push(node);
      if (n === 'cm1') profiledNode = node;
      await node.waitFor(/call manager\(s\) up/, 60_000);
    }
  } else {
    const node = start('node', [...profiled, 'bin/tandem.js', 'start', '-c', file, '--log-level', 'warn']);
    procs.push(node);
    nodeProcs.push(node);
    profiledNode = node;
    await node.waitFor(/call manager\(s\) up/, 60_000);
  }
  const [callerPort, calleePort] = [await freePort(), await freePort()];
  const calleeSip = CALLEE_NODE === 'cm1' ? sip1 : sip2;
  const [a, b] = [await bound(callerPort), await bound(calleePort)];
  const t0 = Date.now();
  await registerAll(
    a,
    callerPort,
    sip1,
    Array.from({ length: PAIRS }, (_, i) => caller(i)),
  );
  await registerAll(
    b,
    calleePort,
    calleeSip,
    Array.from({ length: PAIRS }, (_, i) => callee(i)),
  );
  console.log(`registered ${2 * PAIRS} phones in ${Date.now() - t0} ms`);
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.close(() => r()))));
  const pairsFile = join(dir, 'pairs.csv');
  writeFileSync(
    pairsFile,
    `SEQUENTIAL\n${Array.from({ length: PAIRS }, (_, i) => `${caller(i)};${callee(i)}`).join('\n')}\n`,
  );
  const uas = start('sipp', [
    '-sf',
    resolve('bench/sipp/callee.xml'),
    '-i',
    '127.0.0.1',
    '-p',
    String(calleePort),
    '-mp',
    String(calleePort + 2),
    '-nostdin',
    '-l',
    '100000',
  ]);
  procs.push(uas);
  await new Promise((r) => setTimeout(r, 1000));
  const metric = async (name: string) => {
    const text = await (
      await fetch(`http://127.0.0.1:${adminPort}/metrics`, {
        headers: { authorization: 'Bearer test-operator-token-0123456789abcdef' },
      })
    ).text();
    return [...text.matchAll(new RegExp(`${name}[^\\n]* (\\d+)`, 'g'))].reduce((s, m) => s + Number(m[1]), 0);
  };
  const fmt = (r: Run) =>
    `${r.completed} of ${r.offered} (${r.failed} failed), setup p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms, ${r.retrans} retransmissions`;
  const REASONS = ['queue_delay', 'setups_over_limit', 'overloaded'] as const;
  const refusedByReason = async () =>
    Object.fromEntries(
      await Promise.all(REASONS.map(async (r) => [r, await metric(`tandem_refused_total\\{edge="sip",reason="${r}"`)])),
    ) as Record<(typeof REASONS)[number], number>;
  /** One rate: SIPp to SIPp (the baseline), then through Tandem; passes with <= 0.1 % failed and setup p99 <= 100 ms. */
  const trial = async (rate: number): Promise<{ through: Run; refused: number; pass: boolean }> => {
    const direct = await sipp(`127.0.0.1:${calleePort}`, rate, await freePort(), pairsFile);
    const before = await refusedByReason();
    const cpu0 = nodesCpuMs();
    const through = await sipp(sip1, rate, callerPort, pairsFile);
    const cpuPerCall = (nodesCpuMs() - cpu0) / Math.max(1, through.completed);
    const after = await refusedByReason();
    const refused = REASONS.reduce((sum, r) => sum + after[r] - before[r], 0);
    const why = REASONS.filter((r) => after[r] > before[r]).map((r) => `${r} ${after[r] - before[r]}`);
    console.log(`${rate}/s  SIPp to SIPp: ${fmt(direct)}`);
    console.log(
      `${rate}/s  through Tandem: ${fmt(through)}; refused 503 by Tandem: ${refused}${why.length ? ` (${why.join(', ')})` : ''}; node CPU ${cpuPerCall.toFixed(3)} ms per call completed`,
    );
    await new Promise((r) => setTimeout(r, 6000)); // the callee's timewait, and Tandem's calls end
    return { through, refused, pass: through.failed <= through.offered * 0.001 && through.p99 <= 100 };
  };
  // A cold process is slower for its first thousand calls (JIT, first reads of the mapping table): warm it up
  // first, uncounted, or the first rate tried is judged on the warm-up.
  if (Number(args.warmup) > 0) {
    const rate = Math.max(10, Math.round(RATES[0]! / 2));
    const w = await sipp(sip1, rate, callerPort, pairsFile, Number(args.warmup));
    console.log(`warm-up (not counted): ${rate}/s for ${args.warmup} s: ${fmt(w)}`);
    await new Promise((r) => setTimeout(r, 6000));
  }
  if (!args.search) {
    for (const rate of RATES) await trial(rate);
    return;
  }
  // The highest offered rate with <= 0.1 % failed calls and setup p99 <= 100 ms: doubling from the first
  // rate, then two bisections; then what happens at 1.5x and 2x that rate.
  let pass = 0;
  let fail = 0;
  for (let rate = RATES[0]!; !fail; rate *= 2) (await trial(rate)).pass ? (pass = rate) : (fail = rate);
  for (let k = 0; k < 2 && fail - pass > 50; k++) {
    const mid = Math.round((pass + fail) / 2 / 25) * 25;
    (await trial(mid)).pass ? (pass = mid) : (fail = mid);
  }
  if (!pass) return void console.log(`capacity: below ${RATES[0]}/s`);
  console.log(`capacity: ${pass} calls/s (<= 0.1 % failed, setup p99 <= 100 ms; ${fail}/s did not hold)`);
  for (const x of [1.5, 2]) {
    const rate = Math.round(pass * x);
    const t = await trial(rate);
    const perS = t.through.completed / SECONDS;
    console.log(
      `at ${x}x (${rate}/s): ${perS.toFixed(0)} calls/s completed (${((100 * perS) / pass).toFixed(0)} % of capacity), ${t.refused} refused with 503, ${t.through.failed - t.refused} failed otherwise`,
    );
  }
}

/** CPU time (user and system, ms) the node processes have used so far, from /proc. */
function nodesCpuMs(): number {
  const tick = 1000 / 100; // USER_HZ
  return nodeProcs.reduce((sum, p) => {
    const stat = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return sum + (Number(f[11]) + Number(f[12])) * tick;
  }, 0);
}

/** Stops the profiled node gracefully (its profile is written as it exits) and prints where its time went. */
async function reportProfile(): Promise<void> {
  if (!args.profile || !profiledNode) return;
  profiledNode.kill('SIGTERM');
  await profiledNode.exited();
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return void console.log(`no CPU profile in ${profileDir}`);
  console.log(`CPU profile: ${join(profileDir, file)}`);
  console.log(topFunctions(JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile, 25));
}

main()
  .then(reportProfile)
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => procs.forEach((p) => p.kill('SIGKILL')));
