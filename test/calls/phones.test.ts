// Real SIP phones (baresip) against an embedded cluster of three call
// managers: registration, calls on one node and across nodes, busy, unknown
// numbers, cancel, hold/resume, and a codec mismatch that needs a transcoder.
// Audio is checked: each phone plays its own tone and must hear the other's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';

async function config(): Promise<{ yaml: string; sip: Record<string, string> }> {
  const sip: Record<string, string> = {};
  let nodes = 'nodes:\n';
  for (const n of ['cm1', 'cm2', 'cm3']) {
    sip[n] = `127.0.0.1:${await freePort()}`;
    nodes += `  ${n}: { sip: "${sip[n]}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: 40000-40999 } }\n`;
  }
  const yaml = `
cluster: { request_timeout_ms: 500, heartbeat_ms: 250, node_down_after_ms: 1500 }
${nodes}
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 2, codecs: [PCMU, PCMA, G722] }
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": moh.wav } }
  CFB1: { type: conference_bridge, node: cm1, capacity: 8 }
media_resource_groups:
  G: { devices: [XC3, MOH2, CFB1] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: pw1002, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: pw2001, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: pw2002, device_pool: DP, codecs: [PCMA] }
  "3001": { node: cm3, password: pw3001, device_pool: DP, codecs: [PCMU] }
sip: { conference_numbers: ["8xxx"], ring_timeout_ms: 20000 }
`;
  return { yaml, sip };
}

/** The recording a phone made of its last call must hold the far end's tone, not its own. */
function assertHears(phone: Baresip, farHz: number, ownHz: number): void {
  const files = phone.recordings();
  assert.ok(files.length > 0, `${phone.opts.number} recorded nothing`);
  const pcm = readWav(files[files.length - 1]!);
  assert.ok(pcm.samples.length > pcm.rate, `${phone.opts.number}: less than a second of audio`);
  const t = tonesIn(pcm, [farHz, ownHz]);
  assert.ok(t.rms > 300, `${phone.opts.number} heard silence (rms ${t.rms.toFixed(0)})`);
  assert.ok(t.share[farHz]! > 0.5, `${phone.opts.number} should hear ${farHz} Hz: ${JSON.stringify(t.share)}`);
  assert.ok(t.share[ownHz]! < 0.05, `${phone.opts.number} hears its own ${ownHz} Hz: ${JSON.stringify(t.share)}`);
}

describe('SIP phones on an embedded cluster', () => {
  let cluster: EmbeddedCluster;
  let sip: Record<string, string>;
  const phones: Baresip[] = [];
  const phone = async (number: string, node: string, toneHz: number, extra: Partial<Parameters<typeof Baresip.start>[0]> = {}) => {
    const p = await Baresip.start({ number, password: `pw${number}`, registrar: sip[node]!, toneHz, ...extra });
    phones.push(p);
    return p;
  };
  const api = async (node: string, path: string) => (await fetch(cluster.node(node).admin!.url + path)).json() as Promise<Array<Record<string, unknown>>>;

  before(async () => {
    const c = await config();
    sip = c.sip;
    cluster = await startCluster(c.yaml, { sip: true, admin: true });
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await cluster.stop();
  });

  it('refuses a wrong password and registers with the right one; every node sees where the phone is', async () => {
    const bad = await phone('1002', 'cm1', 700, { password: 'wrong' });
    assert.equal((await bad.registration()).status, 401);
    assert.match(bad.proc.output(), /401 Unauthorized/);
    await bad.stop();
    const a = await phone('1001', 'cm1', 440);
    assert.equal((await a.registration()).status, 200);
    for (const n of ['cm1', 'cm2', 'cm3']) {
      await eventually(async () => (await api(n, '/api/phones')).find((p) => p.number === '1001')?.sip_registration != null, 3000, `${n} to see 1001 registered`);
    }
  });

  it('refuses a phone at a node that does not control it, naming the right node', async () => {
    const stray = await phone('2001', 'cm1', 700);
    const r = await stray.registration();
    assert.equal(r.status, 403);
    assert.match(r.text, /controlled by cm2/);
    await stray.stop();
  });

  it('calls a phone on the same node: both hear each other', async () => {
    const a = phones.find((p) => p.opts.number === '1001')!;
    const b = await phone('1002', 'cm1', 1000);
    assert.equal((await b.registration()).status, 200);
    const ia = a.events.length;
    const ib = b.events.length;
    await a.dial('1002');
    await a.waitEvent('CALL_ESTABLISHED', 10_000, ia);
    await b.waitEvent('CALL_ESTABLISHED', 10_000, ib);
    await new Promise((r) => setTimeout(r, 2500));
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000, ib);
    await new Promise((r) => setTimeout(r, 300));
    assertHears(a, 1000, 440);
    assertHears(b, 440, 1000);
  });
});
