// SIP over TLS with a real phone: a node with sip_tls makes itself a
// self-signed certificate on first start; baresip, given that certificate as
// its CA, registers over TLS (Digest challenge included), calls a phone on
// another node and is called, hold and resume and BYE both ways go over its
// TLS connection (Tandem's Contact says transport=tls), and both hear each
// other. A client that does not speak TLS on that port gets nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';

describe('SIP over TLS (baresip)', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  let tlsAddr = '';
  const phones: Baresip[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tandem-tls-'));
  const certFile = join(dir, '.tandem', 'tls-cm1.sip-tls.crt');

  before(async () => {
    tlsAddr = `127.0.0.1:${await freePort()}`;
    const nodes = (await mediaNodes(['cm1', 'cm2'], 51500, 60, sip)).replace(
      /( {2}cm1: \{ sip: "[^"]+")/,
      `$1, sip_tls: "${tlsAddr}"`,
    );
    cluster = await startCluster(
      `
cluster: { name: tls }
${nodes}
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: pw2001, device_pool: DP, codecs: [PCMU] }
`,
      { sip: true, admin: false, baseDir: dir },
    );
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await cluster?.stop();
  });

  it('made an owner-only self-signed certificate for the node on first start', () => {
    assert.ok(existsSync(certFile), certFile);
    assert.equal(statSync(certFile.replace(/\.crt$/, '.key')).mode & 0o077, 0, 'the key is readable by its owner only');
  });

  it('a TLS phone registers, calls and is called; in-dialog requests stay on its TLS connection; audio both ways', async () => {
    const a = await Baresip.start({
      number: '1001',
      password: 'pw1001',
      registrar: tlsAddr,
      toneHz: 440,
      transport: 'tls',
      cafile: certFile,
    });
    const b = await Baresip.start({ number: '2001', password: 'pw2001', registrar: sip.cm2!, toneHz: 1000 });
    phones.push(a, b);
    assert.equal((await a.registration()).status, 200, 'registered over TLS');
    assert.equal((await b.registration()).status, 200);
    assert.equal(cluster.node('cm1').phones.get('1001')!.snapshot().registration?.transport, 'TLS');
    // The TLS phone calls out; holds and resumes; the far end hangs up (the BYE must reach it over TLS).
    const at = await a.callUntilEstablished(b);
    await a.command('hold');
    await eventually(() => cluster.node('cm1').sip!.calls.calls()[0]?.holding === true, 5000, 'hold over TLS');
    await a.command('resume');
    await eventually(() => cluster.node('cm1').sip!.calls.calls()[0]?.holding === false, 5000, 'resume over TLS');
    await new Promise((r) => setTimeout(r, 1500));
    await b.command('hangup');
    await a.waitEvent('CALL_CLOSED', 10_000, at.caller);
    await eventually(() => cluster.node('cm1').sip!.calls.calls().length === 0, 5000, 'the call gone');
    // Called over TLS: the INVITE goes down the phone's connection; the TLS phone hangs up.
    const at2 = await b.callUntilEstablished(a);
    await new Promise((r) => setTimeout(r, 2000));
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000, at2.caller);
    await Promise.all([a, b].map((p) => p.recordingsClosed()));
    const t = tonesIn(readWav(a.recordings().at(-1)!), [1000, 440]);
    assert.ok(
      t.share[1000]! > 0.5 && t.share[440]! < 0.05,
      `the TLS phone hears the other: ${JSON.stringify(t.share)}`,
    );
  });

  it('plain SIP on the TLS port gets no answer (the handshake fails, the connection closes)', async () => {
    const [host, port] = tlsAddr.split(':') as [string, string];
    const got = await new Promise<string>((resolve) => {
      let data = '';
      const s = connect(Number(port), host, () =>
        s.write(
          'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n',
        ),
      );
      s.on('data', (d) => (data += d.toString('latin1')));
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
      setTimeout(() => s.destroy(), 3000);
    });
    assert.doesNotMatch(got, /SIP\/2\.0 \d{3}/, 'no SIP answer over a non-TLS connection');
  });
});
