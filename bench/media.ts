// npm run bench:media [-- --seconds 20 --only conference,moh,relay,transcode --start 250 --max 20000]
//
// Real-time capacity of one core, found by search. For each device kind, the
// largest number of streams that the process under test, pinned to one CPU
// (taskset), carries in real time over `seconds` (default 20), as a listener
// hears it: at least 99.9 % of the packets expected arrive, and in time for
// a 40 ms jitter buffer (a packet whose transit, arrival less its RTP
// timestamp, exceeds the stream's least transit by more than 40 ms counts as
// lost). Also reported: packets a 20 ms buffer would have dropped, RFC 3550
// interarrival jitter (p99 and max over streams), the CPU the process under
// test used, and for the clocked kinds (conference, music on hold) the 20 ms
// tick's lateness at p99 (a diagnostic of the node's own clock, not a rule:
// it measures the machine's scheduling noise as much as the node).
// The RTP load (bench/rtpLoad.ts) runs pinned to the other CPU; a trial in
// which the load itself fell behind or could not read what came back is
// reported as limited by the load, not as a capacity.
//
//  - conference: participants in rooms of 10, each sending 50 packets/s and
//    getting the mix without itself back (expected: 50/s per participant);
//  - moh: streams of one source (expected: 50/s per stream);
//  - relay (MTP) and transcode (PCMU<->PCMA): sessions of two legs with
//    packets both ways (expected: what was sent), side by side with
//    rtpengine (Debian rtpengine-daemon, userspace, driven by its ng
//    protocol) found by the same search, pinned the same way, in the same run.
//
// The search doubles the load from --start until a trial fails, then
// bisects twice between the last pass and the first failure.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { writeToneWav } from '../src/media/wav.ts';
import { freePort } from '../test/helpers/ports.ts';
import { NgClient } from './ng.ts';
import type { Kind, Target } from './mediaUnderTest.ts';

/** SRTP relay: the key the load encrypts with (a bench constant) */
const BENCH_SRTP_IN = Buffer.alloc(30, 0x11).toString('base64');

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    only: { type: 'string' },
    start: { type: 'string', default: '250' },
    max: { type: 'string', default: '20000' },
    'no-peer': { type: 'boolean', default: false },
    /** native: the C load (bench/rtpload.c, built with gcc), far more streams from one core; node: bench/rtpLoad.ts */
    load: { type: 'string', default: 'native' },
  },
});
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const stage = (s: string) => console.error(`[bench:media] ${s}`);
const DELIVERED_MIN = 0.999;
/** the jitter buffer the pass rule assumes (ms) */
const BUFFER_MS = 40;

interface Load {
  sent: number;
  received: number;
  received_relayed: number;
  send_late_p99_ms: number;
  send_late_max_ms: number;
  kernel_drops: number;
  /** packets later than a 20 / 40 ms jitter buffer would play (during the window) */
  late_20: number;
  late_40: number;
  jitter_p99_ms: number;
  jitter_max_ms: number;
}
interface Clocked {
  ticks: number;
  lag_p99_ms: number;
  lag_max_ms: number;
  skipped: number;
  /** share of one CPU the process under test used in the window */
  cpu: number;
}
interface Trial {
  streams: number;
  /** share of the expected packets that arrived in time for a 40 ms jitter buffer */
  delivered: number;
  /** share of the expected packets that arrived in time for a 20 ms one */
  in_time_20: number;
  lag_p99_ms: number | null;
  skipped: number | null;
  /** share of one CPU the process under test used in the window (null: not measured) */
  cpu: number | null;
  verdict: 'real_time' | 'late_packets' | 'lost_packets' | 'load_limited';
  load: Load;
}

const cpus = os.cpus().length;
if (cpus < 2) throw new Error('the capacity search needs two CPUs: one for the process under test, one for the load');

function lines(child: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

/** The C load, built once per run (undefined: no compiler, or --load node). */
const nativeLoad = ((): string | undefined => {
  if (args.load !== 'native') return undefined;
  const bin = `${os.tmpdir()}/tandem-rtpload`;
  try {
    execFileSync('gcc', ['-O2', '-o', bin, 'bench/rtpload.c', '-lm'], { stdio: 'pipe' });
    return bin;
  } catch (err) {
    stage(`native load not built (${(err as Error).message.split('\n')[0]}): the Node load is used`);
    return undefined;
  }
})();

/** Runs the load generator on CPU 1 against `targets`; `onWindow` when its measured window starts. */
async function runLoad(targets: Target[], onWindow: () => void): Promise<Load> {
  // The C load sends plain RTP; SRTP targets take the Node load (it sends precomputed SRTP).
  const native = nativeLoad && !targets.some((t) => t.srtp) ? nativeLoad : undefined;
  const child = native
    ? spawn('taskset', ['-c', '1', native], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('taskset', ['-c', '1', process.execPath, '--import', 'tsx', 'bench/rtpLoad.ts'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (d.toString().includes('window')) onWindow();
  });
  child.stdin.end(
    native
      ? `${WARMUP} ${SECONDS} ${targets.length}\n${targets.map((t) => `${t.target} ${t.send ? 1 : 0} ${t.pt}`).join('\n')}\n`
      : JSON.stringify({ streams: targets, warmup: WARMUP, seconds: SECONDS }),
  );
  const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
    child.on('exit', (c, sig) => r([c, sig])),
  );
  if (!out.trim())
    throw new Error(
      `the RTP load (${native ? 'C' : 'Node'}) reported nothing: exit ${code ?? signal}; ${err.slice(-500)}`,
    );
  return JSON.parse(out) as Load;
}

function judge(
  streams: number,
  expected: number,
  load: Load,
  clocked: Clocked | undefined,
  nominalSent: number,
  cpu: number | null,
): Trial {
  // Relays answer each packet sent in the window (some after it ends); clocked devices send by their clock within it.
  const arrived = clocked ? load.received : load.received_relayed;
  const share = (n: number) => +(n / Math.max(1, expected)).toFixed(4);
  const delivered = share(arrived - load.late_40);
  // The load is what it should be: all its packets sent in the window, on time within a tick at p99 (it also
  // times what comes back, so its own lateness would be counted against the device), and what came back read.
  const loadOk =
    load.sent >= nominalSent * 0.995 && load.send_late_p99_ms < 20 && load.kernel_drops <= load.received * 0.0005;
  const verdict: Trial['verdict'] = !loadOk
    ? 'load_limited'
    : share(arrived) < DELIVERED_MIN
      ? 'lost_packets'
      : delivered < DELIVERED_MIN
        ? 'late_packets'
        : 'real_time';
  return {
    streams,
    delivered,
    in_time_20: share(arrived - load.late_20),
    lag_p99_ms: clocked?.lag_p99_ms ?? null,
    skipped: clocked?.skipped ?? null,
    cpu,
    verdict,
    load,
  };
}

/** Packets the load should send in the window: 50/s per sending stream, 1/s per listening one. */
const nominal = (targets: Target[]) => targets.reduce((n, t) => n + (t.send ? 50 : 1), 0) * SECONDS;

/** One trial of Tandem's media host with `n` streams of `kind`, pinned to CPU 0. */
async function tandemTrial(kind: Kind, n: number, wav: string): Promise<Trial> {
  const child = spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      '--import',
      'tsx',
      'bench/mediaUnderTest.ts',
      JSON.stringify({ kind, n, seconds: SECONDS, wav, ...(kind === 'srtp_relay' ? { srtpKey: BENCH_SRTP_IN } : {}) }),
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  try {
    const out = lines(child);
    const { targets } = JSON.parse((await out.next()).value as string) as { targets: Target[] };
    const load = await runLoad(targets, () => child.stdin!.write('go\n'));
    const clocked = JSON.parse((await out.next()).value as string) as Clocked;
    const cpu = clocked.cpu;
    const perStreamPerS = 50;
    const expected = kind === 'conference' || kind === 'moh' ? targets.length * perStreamPerS * SECONDS : load.sent;
    return judge(
      targets.length,
      expected,
      load,
      kind === 'conference' || kind === 'moh' ? clocked : undefined,
      nominal(targets),
      cpu,
    );
  } finally {
    child.kill('SIGKILL');
  }
}

/** One trial of rtpengine relaying or transcoding `n` streams (n/2 calls), pinned to CPU 0. */
async function rtpengineTrial(kind: 'relay' | 'transcode' | 'srtp_relay', n: number): Promise<Trial> {
  const [ngPort, cliPort] = [await freePort(), await freePort()];
  const child = spawn(
    'taskset',
    [
      '-c',
      '0',
      rtpengineBinary(),
      '--interface=127.0.0.1',
      `--listen-ng=127.0.0.1:${ngPort}`,
      `--listen-cli=127.0.0.1:${cliPort}`,
      '--foreground',
      '--table=-1',
      '--port-min=20000',
      '--port-max=44999',
      '--log-stderr',
      '--log-level=3',
      '--num-threads=1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  try {
    const ng = new NgClient(ngPort);
    for (let i = 0; ; i++) {
      try {
        await ng.request({ command: 'ping' }, 500);
        break;
      } catch {
        if (i > 40) throw new Error(`rtpengine did not start:\n${err.slice(-2000)}`);
      }
    }
    const transcode = kind === 'transcode';
    // SRTP: the caller offers _80 only, the callee answers _32 with its own key, so rtpengine must decrypt
    // and re-encrypt (with one suite and the same keys both ways it could forward packets untouched).
    const srtp = kind === 'srtp_relay';
    const calleeKey = Buffer.alloc(30, 0x22).toString('base64');
    const sdp = (port: number, pt: number, crypto?: string) =>
      `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} ${crypto ? 'RTP/SAVP' : 'RTP/AVP'} ${pt}\r\na=rtpmap:${pt} ${pt === 0 ? 'PCMU' : 'PCMA'}/8000\r\n${crypto ? `a=crypto:${crypto}\r\n` : ''}a=sendrecv\r\n`;
    const targets: Target[] = [];
    for (let i = 0; i < n / 2; i++) {
      const base = {
        'call-id': `bench-${i}`,
        'from-tag': `a${i}`,
        ICE: 'remove',
        replace: ['origin', 'session-connection'],
      };
      // Placeholder ports in the SDP: the generator's real sockets latch (rtpengine learns the source).
      const offer = await ng.request({
        ...base,
        command: 'offer',
        sdp: sdp(45000 + (i % 5000), 0, srtp ? `1 AES_CM_128_HMAC_SHA1_80 inline:${BENCH_SRTP_IN}` : undefined),
        flags: ['asymmetric-codecs'],
        ...(transcode ? { codec: { transcode: ['PCMA'], strip: ['PCMU'] } } : {}),
      });
      const tag32 = /a=crypto:(\d+) AES_CM_128_HMAC_SHA1_32 /.exec(String(offer.sdp))?.[1];
      if (srtp && !tag32) throw new Error(`rtpengine offered no AES_CM_128_HMAC_SHA1_32: ${String(offer.sdp)}`);
      const answer = await ng.request({
        ...base,
        command: 'answer',
        'to-tag': `b${i}`,
        sdp: sdp(
          55000 + (i % 5000),
          transcode ? 8 : 0,
          srtp ? `${tag32} AES_CM_128_HMAC_SHA1_32 inline:${calleeKey}` : undefined,
        ),
      });
      const portOf = (r: Record<string, unknown>) => Number(/m=audio (\d+)/.exec(String(r.sdp))![1]);
      targets.push(
        {
          target: portOf(answer),
          send: true,
          pt: 0,
          ...(srtp ? { srtp: { suite: 'AES_CM_128_HMAC_SHA1_80' as const, key: BENCH_SRTP_IN } } : {}),
        },
        {
          target: portOf(offer),
          send: true,
          pt: transcode ? 8 : 0,
          ...(srtp ? { srtp: { suite: 'AES_CM_128_HMAC_SHA1_32' as const, key: calleeKey } } : {}),
        },
      );
    }
    ng.close();
    const load = await runLoad(targets, () => undefined);
    return judge(targets.length, load.sent, load, undefined, nominal(targets), null);
  } finally {
    // Gone before the next trial binds its ports.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

function rtpengineBinary(): string {
  const found = ['/usr/bin', '/usr/sbin', ...(process.env.PATH ?? '').split(':')]
    .map((d) => `${d}/rtpengine`)
    .find((p) => existsSync(p));
  if (!found) {
    console.error(
      'bench:media compares relay and transcoding with rtpengine: apt-get install -y rtpengine-daemon (or --no-peer)',
    );
    process.exit(1);
  }
  return found;
}

/** Doubles from --start until a trial fails, then bisects twice; streams are rounded to whole sessions/rooms. */
async function search(
  name: string,
  step: number,
  trial: (n: number) => Promise<Trial>,
): Promise<{ capacity: number | null; limited_by: string; trials: Trial[] }> {
  const trials: Trial[] = [];
  const round = (n: number) => Math.max(step, Math.round(n / step) * step);
  const run = async (n: number) => {
    stage(`${name}: ${n} streams`);
    const t = await trial(round(n));
    const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
    stage(
      `${name}: ${n} streams -> ${t.verdict} (in time for a 40 ms buffer ${pct(t.delivered)}, for 20 ms ${pct(t.in_time_20)}; jitter p99 ${t.load.jitter_p99_ms} ms, max ${t.load.jitter_max_ms} ms` +
        `${t.cpu !== null ? `; CPU ${Math.round(t.cpu * 100)} %` : ''}${t.lag_p99_ms !== null ? `; tick lateness p99 ${t.lag_p99_ms} ms` : ''}; load late p99 ${t.load.send_late_p99_ms} ms, drops ${t.load.kernel_drops})`,
    );
    trials.push(t);
    return t;
  };
  let pass = 0;
  let fail = 0;
  let limited = '';
  for (let n = Number(args.start); n <= Number(args.max); n *= 2) {
    const t = await run(n);
    if (t.verdict === 'real_time') pass = t.streams;
    else {
      fail = t.streams;
      limited = t.verdict;
      break;
    }
  }
  if (!fail) return { capacity: pass, limited_by: `not reached at --max ${args.max}`, trials };
  if (limited === 'load_limited')
    return { capacity: pass || null, limited_by: 'the load generator (at least this much)', trials };
  for (let k = 0; k < 2 && fail - pass > 2 * step; k++) {
    const t = await run((pass + fail) / 2);
    if (t.verdict === 'real_time') pass = t.streams;
    else if (t.verdict === 'load_limited')
      return { capacity: pass || null, limited_by: 'the load generator (at least this much)', trials };
    else [fail, limited] = [t.streams, t.verdict];
  }
  return {
    capacity: pass || null,
    limited_by:
      limited === 'late_packets'
        ? `packets later than a ${BUFFER_MS} ms jitter buffer > 0.1 % at ${fail}`
        : `delivery < 99.9 % at ${fail}`,
    trials,
  };
}

async function main(): Promise<void> {
  const want = (k: string) => !args.only || args.only.split(',').includes(k);
  const wav = `${os.tmpdir()}/bench-moh.wav`;
  writeToneWav(wav, 523, 10);
  const results: Record<string, unknown> = {};
  if (want('conference'))
    results.conference = {
      tandem: await search('conference (rooms of 10, PCMU)', 10, (n) => tandemTrial('conference', n, wav)),
    };
  if (want('moh'))
    results.moh = { tandem: await search('music on hold (one source, PCMU)', 1, (n) => tandemTrial('moh', n, wav)) };
  for (const kind of ['relay', 'transcode'] as const) {
    if (!want(kind)) continue;
    const label = kind === 'relay' ? 'relay (MTP)' : 'PCMU<->PCMA transcoding';
    const tandem = await search(`${label}, Tandem`, 2, (n) => tandemTrial(kind, n, wav));
    const peer = args['no-peer'] ? undefined : await search(`${label}, rtpengine`, 2, (n) => rtpengineTrial(kind, n));
    results[kind] = {
      tandem,
      ...(peer
        ? {
            rtpengine: peer,
            ratio: tandem.capacity && peer.capacity ? +(tandem.capacity / peer.capacity).toFixed(2) : null,
          }
        : {}),
    };
  }
  // The cost of SRTP: Tandem's SRTP relay (decrypt, authenticate, encrypt per packet) beside its plain relay.
  if (want('srtp_relay')) {
    const tandem = await search('SRTP relay (MTP, AES_CM_128_HMAC_SHA1_80 both legs), Tandem', 2, (n) =>
      tandemTrial('srtp_relay', n, wav),
    );
    const peer = args['no-peer']
      ? undefined
      : await search('SRTP relay (_80 in, _32 out), rtpengine', 2, (n) => rtpengineTrial('srtp_relay', n));
    results.srtp_relay = {
      tandem,
      ...(peer
        ? {
            rtpengine: peer,
            ratio: tandem.capacity && peer.capacity ? +(tandem.capacity / peer.capacity).toFixed(2) : null,
          }
        : {}),
    };
  }
  results.machine = {
    cpus,
    model: os.cpus()[0]?.model,
    node: process.version,
    seconds: SECONDS,
    criteria: `>= ${DELIVERED_MIN * 100} % of the packets in time for a ${BUFFER_MS} ms jitter buffer, one CPU (taskset)`,
  };
  console.log(JSON.stringify(results, null, 2));
}

await main();
