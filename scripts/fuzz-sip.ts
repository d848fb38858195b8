// SIP fuzzing outside the test suite's time budget: mutations of real
// messages (REGISTER with credentials, INVITE with SDP, in-dialog requests,
// responses) and random bytes, through the parser in process and, one in
// every --wire-every, over UDP and TCP to a running node whose gate,
// transactions, registrar and call control see them. At the end a real
// REGISTER must still succeed and the node must hold no more transactions
// than a few. Prints the figures SECURITY.md records.
//
//   node --expose-gc --import tsx scripts/fuzz-sip.ts [--n 1000000] [--wire-every 10] [--seed 1]
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { EmbeddedCluster } from '../src/node/embeddedCluster.ts';
import { parseSip } from '../src/sip/parser.ts';
import { freePort } from '../test/helpers/ports.ts';
import { SipAgent } from '../test/helpers/sipAgent.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    'wire-every': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});
const N = Number(args.n);
const WIRE_EVERY = Number(args['wire-every']);

// A small deterministic PRNG (mulberry32), so a failing input can be found again by its seed and index.
let state = Number(args.seed) >>> 0;
const rnd = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

async function main(): Promise<void> {
  const sipAddr = `127.0.0.1:${await freePort()}`;
  const r = parseConfig(`
cluster: { name: fuzz }
nodes:
  cm1: { sip: "${sipAddr}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: 49000-49199 } }
device_pools: { DP: {} }
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP }
  "1002": { node: cm1, password: pw1002, device_pool: DP }
admin: { tokens: [{ name: fuzz, role: viewer, sha256: "${'0'.repeat(64)}" }] }
`);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const cluster = new EmbeddedCluster(r.model, silentLogger(), { admin: false });
  await cluster.start();
  const [host, port] = sipAddr.split(':') as [string, string];
  const seeds = [
    `REGISTER sip:${sipAddr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfz1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@${host}>;tag=a1\r\nTo: <sip:1001@${host}>\r\nCall-ID: fz-1\r\nCSeq: 2 REGISTER\r\nContact: <sip:1001@127.0.0.1:5999>;expires=600\r\nAuthorization: Digest username="1001", realm="fuzz", nonce="abc.defghijk.0123456789012345678901234567", uri="sip:${sipAddr}", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"\r\nContent-Length: 0\r\n\r\n`,
    `INVITE sip:1002@${sipAddr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfz2\r\nMax-Forwards: 70\r\nFrom: "A" <sip:1001@${host}>;tag=a2\r\nTo: <sip:1002@${host}>\r\nCall-ID: fz-2\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:5999>\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n`,
    `BYE sip:tandem@${sipAddr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfz3\r\nMax-Forwards: 70\r\nFrom: <sip:1001@${host}>;tag=a3\r\nTo: <sip:1002@${host}>;tag=b3\r\nCall-ID: fz-3\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n`,
    `OPTIONS sip:${sipAddr} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKfz4\r\nFrom: <sip:x@${host}>;tag=a4\r\nTo: <sip:${sipAddr}>\r\nCall-ID: fz-4\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n`,
    `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP ${sipAddr};branch=z9hG4bKnothing\r\nFrom: <sip:1001@${host}>;tag=a5\r\nTo: <sip:1002@${host}>;tag=b5\r\nCall-ID: fz-5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
  ].map((s) => Buffer.from(s));
  const junk = [
    '\r\n',
    '\n',
    ':',
    ';',
    ',',
    '"',
    '<',
    '>',
    '\0',
    'SIP/2.0',
    'z9hG4bK',
    'Content-Length: 99999\r\n',
    'Via: \r\n',
    '%00',
    'é',
    '\u202e',
    ' '.repeat(300),
    'a'.repeat(5000),
  ];
  const mutate = (seed: Buffer): Buffer => {
    let b = Buffer.from(seed);
    const ops = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < ops; i++) {
      const at = Math.floor(rnd() * (b.length + 1));
      switch (Math.floor(rnd() * 6)) {
        case 0: // flip a byte
          if (b.length) b[Math.min(at, b.length - 1)] = Math.floor(rnd() * 256);
          break;
        case 1: // cut
          b = b.subarray(0, at);
          break;
        case 2: // insert junk
          b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(junk)), b.subarray(at)]);
          break;
        case 3: // duplicate a slice
          b = Buffer.concat([b, b.subarray(at, at + Math.floor(rnd() * 200))]);
          break;
        case 4: // delete a slice
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + Math.floor(rnd() * 40))]);
          break;
        default: // random bytes
          b = Buffer.concat([
            b.subarray(0, at),
            Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))),
          ]);
      }
    }
    return b;
  };

  const udp = createSocket('udp4');
  await new Promise<void>((res) => udp.bind(0, '127.0.0.1', () => res()));
  let tcp = connect(Number(port), host);
  tcp.on('error', () => undefined);
  const stats = { inputs: 0, parsedOk: 0, parseErrors: 0, parserThrew: 0, sentUdp: 0, sentTcp: 0, tcpReconnects: 0 };
  const t0 = performance.now();
  let parseMs = 0;
  for (let i = 0; i < N; i++) {
    const input =
      rnd() < 0.05
        ? Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256)))
        : mutate(pick(seeds));
    stats.inputs++;
    const p0 = performance.now();
    try {
      const res = parseSip(input);
      if (res.ok) stats.parsedOk++;
      else stats.parseErrors++;
      if (rnd() < 0.2) parseSip(input, { stream: true });
    } catch (err) {
      stats.parserThrew++;
      console.error(`parser threw on input ${i} (seed ${args.seed}): ${(err as Error).message}`);
    }
    parseMs += performance.now() - p0;
    if (i % WIRE_EVERY === 0) {
      if (rnd() < 0.8) {
        udp.send(input, Number(port), host);
        stats.sentUdp++;
      } else {
        if (tcp.destroyed) {
          tcp = connect(Number(port), host);
          tcp.on('error', () => undefined);
          stats.tcpReconnects++;
        }
        tcp.write(input);
        stats.sentTcp++;
      }
      // pace the wire so the kernel does not just drop it all
      if (stats.sentUdp % 200 === 0) await new Promise((res) => setTimeout(res, 2));
    }
    if (i > 0 && i % 100_000 === 0) console.error(`${i} inputs, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const elapsed = (performance.now() - t0) / 1000;
  await new Promise((res) => setTimeout(res, 1500));
  tcp.destroy();
  udp.close();
  globalThis.gc?.();
  const cm = cluster.node('cm1');
  const agent = await SipAgent.open('1001', 'pw1001', sipAddr);
  const reg = await agent.register();
  agent.close();
  const result = {
    ...stats,
    seconds: +elapsed.toFixed(1),
    parses_per_second: Math.round(stats.inputs / (parseMs / 1000)),
    node_transactions_after: cm.sip!.stack.transactionCount,
    node_stateless_answers: cm.sip!.stack.statelessAnswers,
    node_received: cm.sip!.transport.stats.received,
    node_malformed: cm.sip!.transport.stats.malformed,
    heap_mb_after: Math.round(process.memoryUsage().heapUsed / 1e6),
    register_after: reg.status,
  };
  console.log(JSON.stringify(result, null, 2));
  await cluster.stop();
  if (stats.parserThrew > 0 || reg.status !== 200) process.exit(1);
}

await main();
