// The TLS edge under a connection flood, and its cipher policy, on real
// sockets: connections are counted from their first byte (not after the
// handshake), silent ones are closed at the handshake deadline, a phone from
// another address still gets through, memory stays bounded, and a stopping
// node does not wait for half-open handshakes. openssl s_client checks what
// TLS 1.2 suites are accepted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import { SipTransport } from '../../src/sip/transport.ts';
import { sipCertificate } from '../../src/sip/tlsCertificate.ts';
import { eventually } from '../helpers/cluster.ts';

const PER_SOURCE = 16;
const HANDSHAKE_MS = 1000;

/** openssl s_client against the port with the given options: whether a handshake was made, and the cipher. */
function sClient(port: number, args: string[]): Promise<{ ok: boolean; cipher: string | undefined }> {
  return new Promise((resolve) => {
    const p = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, ...args],
      { timeout: 10_000 },
      (err, stdout) => {
        const cipher = /Cipher is ([A-Z0-9_-]+)/.exec(stdout)?.[1];
        resolve({ ok: !err && cipher !== undefined && cipher !== '0000', cipher });
      },
    );
    p.stdin?.end();
  });
}

describe('SIP over TLS: the edge under a connection flood, and its ciphers', () => {
  let t: SipTransport;
  let port = 0;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-tls-edge-'));
    const c = await sipCertificate({ baseDir: dir, cluster: 'edge', node: 'cm1', host: '127.0.0.1' });
    t = new SipTransport(
      '127.0.0.1',
      0,
      pino({ level: 'silent' }),
      { maxConnectionsPerSource: PER_SOURCE, maxConnections: 256, idleTimeoutMs: 5000, messageTimeoutMs: HANDSHAKE_MS },
      { host: '127.0.0.1', port: 0, cert: c.cert, key: c.key },
    );
    await t.listen();
    port = t.localTlsPort!;
  });
  after(async () => {
    await t?.close();
  });

  it('accepts TLS 1.3 and TLS 1.2 with ECDHE and AEAD only; refuses static RSA, CBC and TLS 1.1', async () => {
    assert.deepEqual(await sClient(port, ['-tls1_3']), { ok: true, cipher: 'TLS_AES_256_GCM_SHA384' });
    const gcm = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
    assert.deepEqual(gcm, { ok: true, cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
    for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
      assert.equal((await sClient(port, ['-tls1_2', '-cipher', cipher])).ok, false, `${cipher} refused`);
    }
    assert.equal((await sClient(port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'])).ok, false, 'TLS 1.1 refused');
  });

  it('5,000 silent connections from two addresses: at most the per-source cap held, all closed at the handshake deadline; a phone from a third address gets through; memory bounded', async () => {
    const rss0 = process.memoryUsage().rss;
    const socks: Socket[] = [];
    let closed = 0;
    let held = 0;
    const sampler = setInterval(() => (held = Math.max(held, t.connections)), 5);
    // (in waves of 250, so the listen backlog does not turn the flood into SYN retries)
    for (let wave = 0; wave < 20; wave++) {
      await Promise.all(
        Array.from(
          { length: 250 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const s = connect({ host: '127.0.0.1', port, localAddress: i % 2 ? '127.0.0.2' : '127.0.0.1' });
              s.on('error', () => undefined);
              s.on('close', () => {
                closed++;
                resolve();
              });
              s.on('connect', () => resolve());
              socks.push(s);
            }),
        ),
      );
    }
    // The server refused (reset) all past the cap from each address: it never held more.
    await eventually(
      () => closed >= 5000 - 2 * PER_SOURCE,
      5000,
      `all but ${2 * PER_SOURCE} refused (closed ${closed})`,
    );
    clearInterval(sampler);
    assert.ok(held <= 2 * PER_SOURCE, `held ${held} at once`);
    // A phone from another address completes its handshake and is heard meanwhile.
    const heard = new Promise<string>((resolve) => t.once('message', (_m, from) => resolve(from.address)));
    const phone = tlsConnect({
      socket: connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }),
      rejectUnauthorized: false,
    });
    await new Promise<void>((resolve, reject) => phone.once('secureConnect', resolve).once('error', reject));
    phone.write(
      'OPTIONS sip:cm1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.3:5061;branch=z9hG4bK-1\r\nFrom: <sip:p@127.0.0.3>;tag=1\r\nTo: <sip:cm1@127.0.0.1>\r\nCall-ID: edge-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    );
    assert.equal(await heard, '127.0.0.3');
    // The silent ones are closed at the handshake deadline; the phone's is not.
    await eventually(() => closed === 5000, HANDSHAKE_MS + 3000, `every silent connection closed (closed ${closed})`);
    assert.equal(
      t.stats.tcpRefused + t.stats.tlsHandshakeTimedOut,
      5000,
      'each one refused at once or closed at its deadline',
    );
    assert.ok(!phone.destroyed, 'the phone keeps its connection');
    phone.destroy();
    const grew = (process.memoryUsage().rss - rss0) / 1e6;
    assert.ok(grew < 100, `RSS grew ${grew.toFixed(0)} MB`);
    for (const s of socks) s.destroy();
  });

  it('a stopping node does not wait for half-open handshakes', async () => {
    const socks = Array.from({ length: 10 }, () => connect({ host: '127.0.0.1', port }).on('error', () => undefined));
    await eventually(() => socks.every((s) => !s.connecting), 2000, 'connected');
    const t0 = Date.now();
    await t.close();
    assert.ok(Date.now() - t0 < 500, `closed in ${Date.now() - t0} ms`);
    for (const s of socks) s.destroy();
  });
});
