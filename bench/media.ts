// npm run bench:media [-- --seconds 10 --participants 400 --moh 2000 --sessions 300]
// The media plane under real-time load, measured as CPU per stream:
//  - conference: participants in rooms of 10, each sending 50 packets/s and
//    getting the mix without itself back;
//  - music on hold: streams of one source;
//  - relay (MTP) and PCMU<->PCMA transcoding: sessions of two legs with
//    packets both ways, side by side with rtpengine (Debian rtpengine-daemon,
//    userspace, driven by its ng protocol) doing the same in the same run.
// The RTP load runs in a child process (bench/rtpLoad.ts) on the other core.
// Per-core figures are streams / (CPU seconds used / wall seconds).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { ResourceSpec } from '../src/config/model.ts';
import type { Codec, MediaResourceType } from '../src/config/schema.ts';
import { MediaHost, type MediaSession } from '../src/media/mediaHost.ts';
import { PortPool } from '../src/media/portPool.ts';
import { writeToneWav } from '../src/media/wav.ts';
import { silentLogger } from '../src/log.ts';
import { freePort } from '../test/helpers/ports.ts';
import { start } from '../test/helpers/proc.ts';
import { NgClient } from './ng.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    participants: { type: 'string', default: '400' },
    moh: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '300' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const stage = (s: string) => console.error(`[bench:media] ${s}`);

interface Stream {
  target: number;
  send: boolean;
  pt: number;
}

interface LoadResult {
  sent: number;
  received: number;
  perStream: number[];
}

/** Runs the RTP generator for SECONDS against these ports, while `measure` samples the CPU under test. */
async function load(streams: Stream[], cpu: () => number): Promise<{ result: LoadResult; cpuFraction: number }> {
  const child = spawn('node', ['--import', 'tsx', 'bench/rtpLoad.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stdin.end(JSON.stringify({ streams, seconds: SECONDS + 2 }));
  // Skip the first 2 s (start-up, latching), then measure SECONDS.
  await new Promise((r) => setTimeout(r, 2000));
  const c0 = cpu();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpuFraction = (cpu() - c0) / ((performance.now() - t0) / 1000);
  await new Promise((r) => child.on('exit', r));
  return { result: JSON.parse(out) as LoadResult, cpuFraction };
}

const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function pidCpu(pid: number): () => number {
  const tck = 100; // CLK_TCK on Linux
  return () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / tck;
  };
}

function spec(type: MediaResourceType, audio?: string): ResourceSpec {
  return { name: `BENCH_${type}`, type, node: 'bench', capacity: 100_000, location: undefined, codecs: [], audioSources: new Map(audio ? [[1, audio]] : []), prompts: new Map(), dtmf: [] };
}

function pct(a: Float64Array, n: number, p: number): number {
  const v = Array.from(a.subarray(0, Math.min(n, a.length))).sort((x, y) => x - y);
  return +(v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? 0).toFixed(3);
}

async function tandemRun(name: string, make: (host: MediaHost) => Promise<{ sessions: MediaSession[]; streams: Stream[]; expectPerStream: number }>) {
  stage(`${name}: Tandem`);
  // Senders here are not described by SDP: legs latch to the first source (as for phones behind NAT).
  const host = new MediaHost(new PortPool('127.0.0.1', 30000, 59999), process.cwd(), silentLogger(), 'tandem-bench', 'first_source');
  const { sessions, streams, expectPerStream } = await make(host);
  const { result, cpuFraction } = await load(streams, selfCpu);
  const ticks = host.clock.stats.ticks;
  const out = {
    streams: streams.length,
    cpu_fraction: +cpuFraction.toFixed(3),
    streams_per_core: Math.round(streams.length / cpuFraction),
    tick_p99_ms: pct(host.clock.durations, ticks, 99),
    tick_max_lag_ms: +host.clock.stats.maxLagMs.toFixed(1),
    late_ticks: host.clock.stats.late,
    // relays: packets out / packets in; mixers and MOH: packets out / 50 per stream per second
    delivered: +(result.received / (expectPerStream > 0 ? expectPerStream * streams.length : result.sent)).toFixed(4),
  };
  for (const s of sessions) s.close();
  host.close();
  return out;
}

async function relaySessions(host: MediaHost, n: number, codecs: [Codec | undefined, Codec | undefined]) {
  const sessions: MediaSession[] = [];
  const streams: Stream[] = [];
  const type: MediaResourceType = codecs[0] ? 'transcoder' : 'mtp';
  for (let i = 0; i < n; i++) {
    const s = await host.session(spec(type), { op: 'media', allocation_id: `a${i}`, legs: [{ codec: codecs[0] }, { codec: codecs[1] }] });
    sessions.push(s);
    const [a, b] = s.endpoints();
    streams.push({ target: a!.port, send: true, pt: codecs[0] === 'PCMA' ? 8 : 0 }, { target: b!.port, send: true, pt: codecs[1] === 'PCMA' ? 8 : 0 });
  }
  return { sessions, streams, expectPerStream: 0 };
}
const SECONDS_TOTAL = () => SECONDS + 2;

/** rtpengine doing the same relay or transcoding: one call per session, offer/answer through ng. */
async function rtpengineRun(name: string, n: number, transcode: boolean) {
  stage(`${name}: rtpengine`);
  const ngPort = await freePort();
  const proc = start('rtpengine', [
    '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${ngPort}`,
    '--foreground',
    '--table=-1',
    '--port-min=20000',
    '--port-max=29999',
    '--log-stderr',
    '--log-level=3',
  ]);
  try {
    const ng = new NgClient(ngPort);
    for (let i = 0; ; i++) {
      try {
        await ng.request({ command: 'ping' }, 500);
        break;
      } catch {
        if (i > 40) throw new Error(`rtpengine did not start:\n${proc.output().slice(-2000)}`);
      }
    }
    // Placeholder ports for the SDP: the generator's real sockets latch (rtpengine learns the source).
    const streams: Stream[] = [];
    const sdp = (port: number, pt: number) =>
      `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${pt}\r\na=rtpmap:${pt} ${pt === 0 ? 'PCMU' : 'PCMA'}/8000\r\na=sendrecv\r\n`;
    for (let i = 0; i < n; i++) {
      const callId = `bench-${i}`;
      const offer = await ng.request({
        command: 'offer',
        'call-id': callId,
        'from-tag': `a${i}`,
        sdp: sdp(40000 + 2 * i, 0),
        ICE: 'remove',
        flags: ['asymmetric-codecs'],
        replace: ['origin', 'session-connection'],
        ...(transcode ? { codec: { transcode: ['PCMA'], strip: ['PCMU'] } } : {}),
      });
      const answer = await ng.request({
        command: 'answer',
        'call-id': callId,
        'from-tag': `a${i}`,
        'to-tag': `b${i}`,
        sdp: sdp(50000 + 2 * i, transcode ? 8 : 0),
        ICE: 'remove',
        replace: ['origin', 'session-connection'],
      });
      const portFor = (r: Record<string, unknown>) => Number(/m=audio (\d+)/.exec(String(r.sdp))![1]);
      // A sends to the port in the answer, B to the port in the offer.
      streams.push({ target: portFor(answer), send: true, pt: 0 }, { target: portFor(offer), send: true, pt: transcode ? 8 : 0 });
    }
    ng.close();
    const { result, cpuFraction } = await load(streams, pidCpu(proc.child.pid!));
    return {
      streams: streams.length,
      cpu_fraction: +cpuFraction.toFixed(3),
      streams_per_core: Math.round(streams.length / cpuFraction),
      delivered: +(result.received / result.sent).toFixed(4),
    };
  } finally {
    proc.kill('SIGTERM');
    await proc.exited();
  }
}

/** rtpengine is the peer of the relay and transcoding runs: say so plainly when it is missing. */
function requireRtpengine(): void {
  const found = ['/usr/bin', '/usr/sbin', ...(process.env.PATH ?? '').split(':')].some((d) => existsSync(`${d}/rtpengine`));
  if (!found) {
    console.error('bench:media needs rtpengine for the relay and transcoding comparison: apt-get install -y rtpengine-daemon (or --only conference,moh)');
    process.exit(1);
  }
}

async function run(): Promise<void> {
  const results: Record<string, unknown> = {};
  if (!args.only || /relay|transcode/.test(args.only)) requireRtpengine();
  const want = (k: string) => !args.only || args.only.split(',').includes(k);
  if (want('conference')) {
    const p = Number(args.participants);
    results.conference = await tandemRun(`conference, ${p} participants in rooms of 10`, async (host) => {
      const sessions: MediaSession[] = [];
      const streams: Stream[] = [];
      for (let i = 0; i < p; i++) {
        const s = await host.session(spec('conference_bridge'), { op: 'media', allocation_id: `c${i}`, legs: [{ codec: 'PCMU' }], room: `r${Math.floor(i / 10)}` });
        sessions.push(s);
        streams.push({ target: s.endpoints()[0]!.port, send: true, pt: 0 });
      }
      return { sessions, streams, expectPerStream: SECONDS_TOTAL() * 50 };
    });
  }
  if (want('moh')) {
    const m = Number(args.moh);
    const wav = `${os.tmpdir()}/bench-moh.wav`;
    writeToneWav(wav, 523, 10);
    results.moh = await tandemRun(`music on hold, ${m} streams of one source`, async (host) => {
      const sessions: MediaSession[] = [];
      const streams: Stream[] = [];
      for (let i = 0; i < m; i++) {
        const s = await host.session(spec('moh', wav), { op: 'media', allocation_id: `m${i}`, legs: [{ codec: 'PCMU' }] });
        sessions.push(s);
        streams.push({ target: s.endpoints()[0]!.port, send: false, pt: 0 });
      }
      // Streams start when their first (latching) packet arrives: count from then.
      return { sessions, streams, expectPerStream: SECONDS_TOTAL() * 50 - 5 };
    });
  }
  const n = Number(args.sessions);
  if (want('relay')) {
    const ours = await tandemRun(`relay (MTP), ${n} sessions`, (host) => relaySessions(host, n, [undefined, undefined]));
    const peer = await rtpengineRun(`relay, ${n} sessions`, n, false);
    results.relay = { tandem: ours, rtpengine: peer, ratio_per_core: +(ours.streams_per_core / peer.streams_per_core).toFixed(2) };
  }
  if (want('transcode')) {
    const ours = await tandemRun(`PCMU<->PCMA transcoding, ${n} sessions`, (host) => relaySessions(host, n, ['PCMU', 'PCMA']));
    const peer = await rtpengineRun(`PCMU<->PCMA transcoding, ${n} sessions`, n, true);
    results.transcode = { tandem: ours, rtpengine: peer, ratio_per_core: +(ours.streams_per_core / peer.streams_per_core).toFixed(2) };
  }
  results.machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, seconds: SECONDS };
  console.log(JSON.stringify(results, null, 2));
}

await run();
