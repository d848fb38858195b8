// Encrypted calls with real phones: baresip over SIP/TLS with `mediaenc
// srtp-mand` (RTP/SAVP, SDES keys) through every kind of media resource on
// other nodes, audio checked on what the phones decoded; a raw capture of the
// loopback for the whole suite, in which the test tones of the SRTP phones
// must not be found (and the one clear leg, towards an RTP-only phone, shows
// its tone: the eavesdropper's detector works). Policies: an SRTP phone
// reaches an RTP-only phone through an MTP; `required` refuses what cannot be
// encrypted; a device without SRTP is skipped with the reason in the trace.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { readWav, toneShare, tonesIn, writeToneWav } from '../helpers/audio.ts';
import { adminFetch, withTestAdmin } from '../helpers/admin.ts';
import { Baresip } from '../helpers/baresip.ts';
import { LoopbackCapture, tonesOnTheWire, type Datagram } from '../helpers/capture.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { offerSdp, SipAgent } from '../helpers/sipAgent.ts';

const MOH_HZ = 500;
const PROMPT_HZ = 800;
// Each phone's tone, and its RTP ports (a capture tells them apart).
const PHONES = {
  '1001': { hz: 440, rtp: 41000 },
  '1002': { hz: 1300, rtp: 41100 },
  '2001': { hz: 1000, rtp: 41200 },
  '2004': { hz: 700, rtp: 41300 },
  '2002': { hz: 1700, rtp: 41400 }, // RTP only, and configured so
  '2005': { hz: 1500, rtp: 41500 }, // RTP only, left at srtp: optional
} as const;
type Number_ = keyof typeof PHONES;

describe('SRTP through every media resource (baresip over TLS, srtp-mand)', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const tls: Record<string, string> = {};
  const phones = new Map<Number_, Baresip>();
  const agents: SipAgent[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tandem-srtp-'));
  let capture: LoopbackCapture;
  let wire: Datagram[] = [];
  const api = async (node: string, path: string) =>
    (await adminFetch(cluster.node(node).admin!.url + path)).json() as Promise<Array<Record<string, unknown>>>;
  const sessions = async (node: string) =>
    (
      (await adminFetch(`${cluster.node(node).admin!.url}/api/media`)).json() as Promise<{
        sessions: Array<{ device: string; legs: Array<{ srtp: string | null }> }>;
      }>
    ).then((m) => m.sessions);

  before(async () => {
    writeToneWav(join(dir, 'moh.wav'), MOH_HZ, 30);
    writeToneWav(join(dir, 'unknown.wav'), PROMPT_HZ, 2);
    let nodes = await mediaNodes(['cm1', 'cm2', 'cm3'], 53000, 60, sip);
    for (const n of ['cm1', 'cm2']) {
      tls[n] = `127.0.0.1:${await freePort()}`;
      nodes = nodes.replace(new RegExp(`(  ${n}: \\{ sip: "[^"]+")`), `$1, sip_tls: "${tls[n]}"`);
    }
    cluster = await startCluster(
      withTestAdmin(`
cluster: { name: srtp }
${nodes}
media_resources:
  XC_CLEAR: { type: transcoder, node: cm2, capacity: 4, codecs: [PCMU, PCMA], srtp: false }
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
  MTP3: { type: mtp, node: cm3, capacity: 4 }
  CFB2: { type: conference_bridge, node: cm2, capacity: 8 }
  MOH3: { type: moh, node: cm3, capacity: 4, audio_sources: { "1": moh.wav } }
  ANN3: { type: annunciator, node: cm3, capacity: 4, prompts: { unknown_number: unknown.wav } }
media_resource_groups:
  G: { devices: [XC_CLEAR, XC3, MTP3, CFB2, MOH3, ANN3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
sip:
  conference_numbers: ["8xxx"]
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: pw1002, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: pw2001, device_pool: DP, codecs: [PCMA] }
  "2004": { node: cm2, password: pw2004, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: pw2002, device_pool: DP, codecs: [PCMU], srtp: off }
  "2003": { node: cm2, password: pw2003, device_pool: DP, codecs: [PCMU] }
  "2005": { node: cm2, password: pw2005, device_pool: DP, codecs: [PCMU] }
  "1009": { node: cm1, password: pw1009, device_pool: DP, codecs: [PCMU], srtp: required }
`),
      { sip: true, admin: true, baseDir: dir },
    );
    capture = await LoopbackCapture.start(join(dir, 'lo.pcap'), [[20000, 65535]]);
    for (const [number, p] of Object.entries(PHONES) as Array<[Number_, (typeof PHONES)[Number_]]>) {
      const node = number.startsWith('1') ? 'cm1' : 'cm2';
      const clear = number === '2002' || number === '2005';
      const phone = await Baresip.start({
        number,
        password: `pw${number}`,
        registrar: clear ? sip[node]! : tls[node]!,
        toneHz: p.hz,
        codecs: [number === '2001' ? 'pcma' : 'pcmu'],
        rtpBase: p.rtp,
        ...(clear
          ? {}
          : {
              transport: 'tls' as const,
              cafile: join(dir, '.tandem', `srtp-${node}.sip-tls.crt`),
              mediaenc: 'srtp-mand' as const,
            }),
      });
      phones.set(number, phone);
    }
    for (const p of phones.values()) assert.equal((await p.registration()).status, 200, `${p.opts.number} registered`);
  });
  after(async () => {
    await Promise.all([...phones.values()].map((p) => p.stop()));
    for (const a of agents) a.close();
    await capture?.stop().catch(() => []);
    await cluster?.stop();
  });

  const phone = (n: Number_) => phones.get(n)!;
  /** a call between two baresip phones, both hearing each other, then hung up */
  const talk = async (from: Number_, to: Number_, during?: () => Promise<void>) => {
    const [a, b] = [phone(from), phone(to)];
    const at = await a.callUntilEstablished(b);
    await new Promise((r) => setTimeout(r, 2500));
    await during?.();
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000, at.callee);
    await Promise.all([a, b].map((p) => p.recordingsClosed()));
    for (const [p, other] of [
      [a, PHONES[to].hz],
      [b, PHONES[from].hz],
    ] as const) {
      const t = tonesIn(readWav(p.recordings().at(-1)!), [other]);
      assert.ok(t.share[other]! > 0.4, `${p.opts.number} should hear ${other} Hz: ${JSON.stringify(t.share)}`);
    }
  };

  it('cross-node call between two SRTP phones: end to end SRTP, both hear each other', async () => {
    await talk('1001', '2004', async () => {
      const [call] = await api('cm1', '/api/calls');
      assert.deepEqual(call!.srtp, { phone: 'AES_CM_128_HMAC_SHA1_80', far: 'AES_CM_128_HMAC_SHA1_80' });
    });
  });

  it('through a transcoder on a third node: SRTP on both of its legs; the transcoder without SRTP is skipped (no_capability)', async () => {
    await talk('1001', '2001', async () => {
      const [call] = await api('cm1', '/api/calls');
      const xc = (call!.resources as Array<Record<string, unknown>>).find((r) => r.type === 'transcoder')!;
      assert.equal(xc.resource, 'XC3');
      assert.equal(xc.phone_side_srtp, 'AES_CM_128_HMAC_SHA1_80');
      assert.equal(xc.far_side_srtp, 'AES_CM_128_HMAC_SHA1_80');
      const half = cluster.node('cm1').sip!.calls.halves()[0]!;
      const skipped = half.inserts[0]!.allocation.trace.steps.find((s) => s.device === 'XC_CLEAR');
      assert.equal(skipped?.verdict, 'no_capability');
      assert.match(skipped!.detail ?? '', /SRTP/);
      // The device's legs say the same, with their suites and no keys.
      const media = await sessions('cm3');
      const legs = media.find((m) => m.device === 'XC3')!.legs.map((l) => l.srtp);
      assert.deepEqual(legs, ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_80']);
      assert.doesNotMatch(JSON.stringify([call, media]), /inline|[A-Za-z0-9+/]{40}/, 'no key in the admin API');
    });
    const explain = await (
      await adminFetch(
        `${cluster.node('cm1').admin!.url}/api/explain?phone=1001&type=transcoder&codecs=PCMU,PCMA&srtp=true`,
      )
    ).json();
    const steps = (explain as { steps: Array<{ device: string; verdict: string }> }).steps;
    assert.equal(steps.find((s) => s.device === 'XC_CLEAR')?.verdict, 'no_capability');
  });

  it('a three-party conference of SRTP phones on a bridge of another node: each hears the two others', async () => {
    const ps = (['1001', '1002', '2004'] as const).map(phone);
    const at = ps.map((p) => p.events.length);
    for (const p of ps) await p.dial('8001');
    await Promise.all(ps.map((p, i) => p.waitEvent('CALL_ESTABLISHED', 10_000, at[i])));
    const media = await sessions('cm2');
    assert.deepEqual(
      media.filter((m) => m.device === 'CFB2').map((m) => m.legs[0]!.srtp),
      Array(3).fill('AES_CM_128_HMAC_SHA1_80'),
    );
    await new Promise((r) => setTimeout(r, 3000));
    for (const p of ps) await p.command('hangup');
    await Promise.all(ps.map((p) => p.recordingsClosed()));
    for (const p of ps) {
      const own = PHONES[p.opts.number as Number_].hz;
      const others = ps.filter((q) => q !== p).map((q) => PHONES[q.opts.number as Number_].hz);
      const t = tonesIn(readWav(p.recordings().at(-1)!), [own, ...others]);
      for (const f of others)
        assert.ok(t.share[f]! > 0.15, `${p.opts.number} should hear ${f} Hz: ${JSON.stringify(t.share)}`);
      assert.ok(t.share[own]! < 0.05, `${p.opts.number} hears itself: ${JSON.stringify(t.share)}`);
    }
  });

  it('an SRTP phone and an RTP-only phone (srtp: off) talk through an MTP that does SRTP on one side only', async () => {
    await talk('1001', '2002', async () => {
      const [call] = await api('cm1', '/api/calls');
      assert.ok(call, JSON.stringify(await api('cm2', '/api/calls')));
      const mtp = (call!.resources as Array<Record<string, unknown>>).find((r) => r.type === 'mtp')!;
      assert.equal(mtp.resource, 'MTP3');
      assert.equal(mtp.phone_side_srtp, 'AES_CM_128_HMAC_SHA1_80');
      assert.equal(mtp.far_side_srtp, null);
      assert.match(String(mtp.why), /SRTP to RTP/);
    });
  });

  it('an RTP-only phone left at srtp: optional refuses RTP/SAVP: the call goes on in clear towards it through an MTP', async () => {
    await talk('1001', '2005', async () => {
      const [call] = await api('cm1', '/api/calls');
      const mtp = (call!.resources as Array<Record<string, unknown>>).find((r) => r.type === 'mtp')!;
      assert.match(String(mtp.why), /2005 refused RTP\/SAVP/);
      assert.deepEqual([mtp.phone_side_srtp, mtp.far_side_srtp], ['AES_CM_128_HMAC_SHA1_80', null]);
    });
  });

  it('hold: the held SRTP party hears music on hold from another node, encrypted for its leg', async () => {
    const held = await SipAgent.open('2003', 'pw2003', sip.cm2!);
    agents.push(held);
    held.srtpKey = Buffer.alloc(30, 7).toString('base64');
    assert.equal((await held.register()).status, 200);
    const a = phone('1001');
    const ia = a.events.length;
    await a.dial('2003');
    await a.waitEvent('CALL_ESTABLISHED', 10_000, ia);
    await a.command('hold');
    await eventually(async () => (await api('cm2', '/api/calls'))[0]?.held === true, 5000, 'held');
    await new Promise((r) => setTimeout(r, 1500));
    const heard = held.heardSince(Date.now() - 1000);
    assert.ok(
      heard.length > 4000,
      `the held party decrypted music on hold (${heard.length} samples, ${held.srtpFailures} packets refused)`,
    );
    assert.ok(toneShare(heard, 8000, MOH_HZ) > 0.5, `music on hold ${toneShare(heard, 8000, MOH_HZ).toFixed(2)}`);
    const [call] = await api('cm2', '/api/calls');
    assert.equal(
      (call!.resources as Array<Record<string, unknown>>).find((r) => r.type === 'moh')!.phone_side_srtp,
      'AES_CM_128_HMAC_SHA1_80',
    );
    await a.command('hangup');
    await eventually(async () => (await api('cm2', '/api/calls')).length === 0, 5000, 'call over');
  });

  it('an announcement (annunciator on another node) reaches an SRTP caller encrypted for its leg', async () => {
    const caller = await SipAgent.open('1009', 'pw1009', sip.cm1!);
    agents.push(caller);
    caller.srtpKey = Buffer.alloc(30, 8).toString('base64');
    assert.equal((await caller.register()).status, 200);
    const t0 = Date.now();
    const call = await caller.invite('9999', {
      sdp: offerSdp(caller.rtpPort, [0], 101, { tag: 1, suite: 'AES_CM_128_HMAC_SHA1_80', key: caller.srtpKey }),
      timeoutMs: 8000,
      onProvisional: (r) => {
        if (r.status === 183)
          assert.ok(caller.decryptWith(r.body), `183 with RTP/SAVP and a crypto line: ${r.body.toString()}`);
      },
    });
    assert.equal(call.final.status, 404);
    const heard = caller.heardSince(t0);
    assert.ok(
      heard.length > 8000,
      `the prompt decrypted (${heard.length} samples, ${caller.srtpFailures} packets refused)`,
    );
    assert.ok(
      toneShare(heard, 8000, PROMPT_HZ) > 0.5,
      `the prompt's tone ${toneShare(heard, 8000, PROMPT_HZ).toFixed(2)}`,
    );
  });

  it('policies refuse what cannot be encrypted, with the reason (488)', async () => {
    const key = Buffer.alloc(30, 9).toString('base64');
    const req = await SipAgent.open('1009', 'pw1009', sip.cm1!);
    agents.push(req);
    assert.equal((await req.register()).status, 200);
    // srtp: required offering RTP/AVP: refused.
    const plain = await req.invite('2004');
    assert.equal(plain.final.status, 488);
    assert.match(plain.final.reason, /1009 must offer encrypted media/);
    // required, offering SRTP, to a phone that does not do SRTP: no MTP may decrypt on its behalf.
    const toClear = await req.invite('2002', {
      sdp: offerSdp(req.rtpPort, [0], 101, { tag: 1, suite: 'AES_CM_128_HMAC_SHA1_80', key }),
    });
    assert.equal(toClear.final.status, 488);
    assert.match(toClear.final.reason, /1009 requires encrypted media and 2002 does not do SRTP/);
    // An RTP/SAVP offer without a usable crypto line.
    const noKey = await req.invite('2004', { sdp: offerSdp(req.rtpPort, [0]).replace('RTP/AVP', 'RTP/SAVP') });
    assert.equal(noKey.final.status, 488);
    assert.match(noKey.final.reason, /without a crypto line/);
  });

  it('nothing an eavesdropper on the loopback captured decodes to an SRTP phone’s tone; the clear leg does (the check works)', async () => {
    wire = await capture.stop();
    const streams = tonesOnTheWire(wire, [...Object.values(PHONES).map((p) => p.hz), MOH_HZ, PROMPT_HZ]);
    const clearRange = [PHONES['2002'].rtp, PHONES['2005'].rtp + 99];
    const inClear = (d: number) => d >= clearRange[0]! && d <= clearRange[1]!;
    const fromClear = new Set(wire.filter((d) => d.src >= clearRange[0]! && d.src <= clearRange[1]!).map((d) => d.dst));
    // The positive control: the RTP-only phone receives 1001's tone in clear from the MTP, and sends its own.
    const toClear = streams.filter((s) => inClear(s.dst));
    assert.ok(
      toClear.some((s) => s.share[PHONES['1001'].hz]! > 0.5),
      `the clear leg carries 1001's tone: ${JSON.stringify(toClear)}`,
    );
    const encrypted = streams.filter((s) => !inClear(s.dst) && !fromClear.has(s.dst));
    assert.ok(encrypted.length >= 6, `SRTP streams captured: ${encrypted.length}`);
    for (const s of encrypted) {
      for (const [f, share] of Object.entries(s.share))
        assert.ok(share < 0.1, `stream to port ${s.dst} decodes to ${f} Hz (${share}): cleartext audio on the wire`);
    }
  });
});
