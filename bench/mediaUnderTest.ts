// The process under test of the capacity search (bench/media.ts): a media
// host, as a node runs it, with `n` sessions of one device kind. Run pinned
// to one CPU. Prints the ports to load (one JSON line), then on "go" on stdin
// measures `seconds`: how late the 20 ms ticks ran (p99, max), ticks
// skipped, and the RTP packets its legs sent; prints that (one JSON line).
// Input: argv[2] = JSON { kind, n, seconds, wav? }.
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { ResourceSpec } from '../src/config/model.ts';
import type { MediaResourceType } from '../src/config/schema.ts';
import { DEVICE_KINDS } from '../src/devices/kinds.ts';
import { MediaHost, type MediaSession } from '../src/media/mediaHost.ts';
import { PortPool } from '../src/media/portPool.ts';
import { silentLogger } from '../src/log.ts';

export type Kind = 'conference' | 'moh' | 'relay' | 'transcode' | 'srtp_relay';

export interface Target {
  target: number;
  send: boolean;
  pt: number;
  /** SRTP: the load encrypts what it sends to this target with this suite and key */
  srtp?: { suite: 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32'; key: string };
}

/** srtpKey (srtp_relay): the key the load encrypts with; the legs send with keys of their own */
const job = JSON.parse(process.argv[2]!) as { kind: Kind; n: number; seconds: number; wav?: string; srtpKey?: string };
const spec = (type: MediaResourceType): ResourceSpec => ({
  name: `BENCH_${type}`,
  type,
  node: 'bench',
  capacity: 1_000_000,
  location: undefined,
  codecs: [],
  audioSources: new Map(job.wav ? [[1, job.wav]] : []),
  prompts: new Map(),
  dtmf: [],
  srtp: true,
});

// Senders here are not described by SDP: legs latch to the first source (as for phones behind NAT).
// The media directory is the source file's (media files are read only from media_dir).
const host = new MediaHost({
  pool: new PortPool('127.0.0.1', 20000, 60999),
  mediaDir: job.wav ? dirname(job.wav) : process.cwd(),
  log: silentLogger(),
  kinds: DEVICE_KINDS,
  cname: 'tandem-bench',
  latch: 'first_source',
});
const sessions: MediaSession[] = [];
const targets: Target[] = [];
for (let i = 0; i < job.n; i++) {
  if (job.kind === 'conference') {
    const s = await host.session(spec('conference_bridge'), {
      op: 'media',
      allocation_id: `c${i}`,
      legs: [{ codec: 'PCMU' }],
      room: `r${Math.floor(i / 10)}`,
    });
    targets.push({ target: s.endpoints()[0]!.port, send: true, pt: 0 });
    sessions.push(s);
  } else if (job.kind === 'moh') {
    const s = await host.session(spec('moh'), { op: 'media', allocation_id: `m${i}`, legs: [{ codec: 'PCMU' }] });
    targets.push({ target: s.endpoints()[0]!.port, send: false, pt: 0 });
    sessions.push(s);
  } else {
    // A relay session carries two streams (one each way).
    const transcode = job.kind === 'transcode';
    const type = transcode ? 'transcoder' : 'mtp';
    if (i % 2) continue;
    // SRTP relay: each leg authenticates and decrypts what it receives, and encrypts what it sends, with keys of its own.
    const srtp =
      job.kind === 'srtp_relay'
        ? () => ({
            srtp: {
              suite: 'AES_CM_128_HMAC_SHA1_80' as const,
              tx: randomBytes(30).toString('base64'),
              rx: job.srtpKey!,
            },
          })
        : () => ({});
    const s = await host.session(spec(type), {
      op: 'media',
      allocation_id: `a${i}`,
      legs: [
        { codec: transcode ? 'PCMU' : undefined, ...srtp() },
        { codec: transcode ? 'PCMA' : undefined, ...srtp() },
      ],
    });
    const [a, b] = s.endpoints();
    const load = job.srtpKey ? { srtp: { suite: 'AES_CM_128_HMAC_SHA1_80' as const, key: job.srtpKey } } : {};
    targets.push(
      { target: a!.port, send: true, pt: 0, ...load },
      { target: b!.port, send: true, pt: transcode ? 8 : 0, ...load },
    );
    sessions.push(s);
  }
}
process.stdout.write(`${JSON.stringify({ targets })}\n`);

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== 'go') continue;
  const clock = host.clock;
  const t0 = clock.stats.ticks;
  const skipped0 = clock.stats.skipped;
  const cpu0 = process.cpuUsage();
  const at0 = performance.now();
  await new Promise((r) => setTimeout(r, job.seconds * 1000));
  const used = process.cpuUsage(cpu0);
  // the share of one CPU this process used in the window (user + system)
  const cpu = +((used.user + used.system) / 1000 / (performance.now() - at0)).toFixed(2);
  const ticks = clock.stats.ticks - t0;
  const lags: number[] = [];
  for (let k = Math.max(t0, clock.stats.ticks - clock.lags.length); k < clock.stats.ticks; k++)
    lags.push(clock.lags[k % clock.lags.length]!);
  lags.sort((a, b) => a - b);
  const p = (q: number) =>
    lags.length ? +lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!.toFixed(2) : 0;
  process.stdout.write(
    JSON.stringify({ ticks, lag_p99_ms: p(0.99), lag_max_ms: p(1), skipped: clock.stats.skipped - skipped0, cpu }) +
      '\n',
  );
  break;
}
for (const s of sessions) s.close();
host.close();
process.exit(0);
