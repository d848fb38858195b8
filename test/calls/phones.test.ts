// Real SIP phones (baresip) against an embedded cluster of three call
// managers: registration, calls on one node and across nodes, busy, unknown
// numbers, cancel, hold/resume, and a codec mismatch that needs a transcoder.
// Audio is checked: each phone plays its own tone and must hear the other's.
import { adminFetch } from '../helpers/admin.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readWav, toneShare, tonesIn, writeToneWav } from '../helpers/audio.ts';
import { SipAgent } from '../helpers/sipAgent.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually, startCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';

/** The music-on-hold source of the test cluster: a steady 600 Hz tone. */
const MOH_HZ = 600;

async function config(): Promise<{ yaml: string; sip: Record<string, string> }> {
  const moh = join(mkdtempSync(join(tmpdir(), 'tandem-moh-')), 'moh.wav');
  writeToneWav(moh, MOH_HZ, 5);
  const sip: Record<string, string> = {};
  let nodes = 'nodes:\n';
  for (const [i, n] of ['cm1', 'cm2', 'cm3'].entries()) {
    sip[n] = `127.0.0.1:${await freePort()}`;
    // (three nodes on one address: ranges of their own, as check-config requires)
    nodes += `  ${n}: { sip: "${sip[n]}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: ${40000 + i * 333}-${40332 + i * 333} } }\n`;
  }
  const yaml = `
media_dir: "${dirname(moh)}"
cluster: { request_timeout_ms: 500, heartbeat_ms: 250, node_down_after_ms: 1500 }
${nodes}
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 2, codecs: [PCMU, PCMA, G722, OPUS] }
  MOH2: { type: moh, node: cm2, capacity: 4, audio_sources: { "1": "${moh}" } }
  CFB1: { type: conference_bridge, node: cm1, capacity: 8 }
  MTP1: { type: mtp, node: cm1, capacity: 4 }
  XC2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [XC3, MOH2, CFB1, MTP1, XC2] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP: { mrgl: L }
phones:
  "1001": { node: cm1, password: pw1001, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: pw1002, device_pool: DP, codecs: [PCMU] }
  "1009": { node: cm1, password: pw1009, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: pw2001, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: pw2002, device_pool: DP, codecs: [PCMA] }
  "3001": { node: cm3, password: pw3001, device_pool: DP, codecs: [PCMU] }
  "3002": { node: cm3, password: pw3002, device_pool: DP, codecs: [OPUS] }
  "2003": { node: cm2, password: pw2003, device_pool: DP, codecs: [PCMU] }
  "2004": { node: cm2, password: pw2004, device_pool: DP, codecs: [PCMU], mtp_required: true }
  "2005": { node: cm2, password: pw2005, device_pool: DP, codecs: [PCMU], dtmf: [sip_info] }
  "2006": { node: cm2, password: pw2006, device_pool: DP, codecs: [OPUS] }
  "2007": { node: cm2, password: pw2007, device_pool: DP, codecs: [G722] }
  "3003": { node: cm3, password: pw3003, device_pool: DP, codecs: [G722] }
  # no codecs configured: what they take is learnt from the call
  "2008": { node: cm2, password: pw2008, device_pool: DP }
sip: { conference_numbers: ["8xxx"], ring_timeout_ms: 20000 }
`;
  return { yaml, sip };
}

/** Both phones talk for 2.5 s; `hanger` hangs up; `other` sees the call close (its events from `at` on). */
async function talkThenHangUp(hanger: Baresip, other: Baresip, at: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 2500));
  await hanger.command('hangup');
  await other.waitEvent('CALL_CLOSED', 10_000, at);
  await Promise.all([hanger, other].map((p) => p.recordingsClosed()));
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
  const phone = async (
    number: string,
    node: string,
    toneHz: number,
    extra: Partial<Parameters<typeof Baresip.start>[0]> = {},
  ) => {
    const p = await Baresip.start({ number, password: `pw${number}`, registrar: sip[node]!, toneHz, ...extra });
    phones.push(p);
    return p;
  };
  /**
   * Baresip 1001 calls the project's SIP agent as `number` (the agent keeps
   * every RTP packet and SIP request it gets: baresip stops recording at the
   * first re-INVITE); `body` runs while the call is up; the agent is closed after.
   */
  const callAgent = async (
    number: string,
    node: string,
    body: (agent: SipAgent, callerAt: number) => Promise<void>,
  ) => {
    const a = await line(...PHONE_1001);
    const agent = await SipAgent.open(number, `pw${number}`, sip[node]!);
    try {
      assert.equal((await agent.register()).status, 200);
      const ia = a.events.length;
      await a.dial(number);
      await a.waitEvent('CALL_ESTABLISHED', 10_000, ia);
      await body(agent, ia);
    } finally {
      agent.close();
    }
  };
  /**
   * The phone of a line as a test describes it (node, tone, options): the
   * running one when it matches, else started and registered now. No test
   * relies on phones another test started: each can run alone
   * (npm test -- test/calls/phones.test.ts --test-name-pattern '...').
   */
  const lines = new Map<string, { key: string; phone: Baresip }>();
  const line = async (
    number: string,
    node: string,
    toneHz: number,
    extra: Partial<Parameters<typeof Baresip.start>[0]> = {},
  ) => {
    const key = JSON.stringify([node, toneHz, extra]);
    const cur = lines.get(number);
    if (cur?.key === key && cur.phone.proc.child.exitCode === null) return cur.phone;
    if (cur) await cur.phone.stop();
    const p = await phone(number, node, toneHz, extra);
    assert.equal((await p.registration()).status, 200, `${number} registers at ${node}`);
    lines.set(number, { key, phone: p });
    return p;
  };
  const PHONE_1001 = ['1001', 'cm1', 440] as const;
  const PHONE_2001 = ['2001', 'cm2', 1000] as const;
  const api = async (node: string, path: string) =>
    (await adminFetch(cluster.node(node).admin!.url + path)).json() as Promise<Array<Record<string, unknown>>>;

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
    // (its own number: the failures put user 1009 into backoff, then 403 without checking)
    const bad = await phone('1009', 'cm1', 700, { password: 'wrong' });
    assert.ok([401, 403].includes((await bad.registration()).status));
    assert.match(
      bad.proc.output(),
      /reg: \S+: (401 Unauthorized|403 Forbidden \(too many failed authentication attempts\))/,
    );
    await bad.stop();
    await line(...PHONE_1001);
    for (const n of ['cm1', 'cm2', 'cm3']) {
      await eventually(
        async () => (await api(n, '/api/phones')).find((p) => p.number === '1001')?.sip_registration != null,
        3000,
        `${n} to see 1001 registered`,
      );
    }
  });

  it('refuses a phone at a node that does not control it, naming the right node', async () => {
    const stray = await phone('2001', 'cm1', 700);
    const r = await stray.registration();
    assert.equal(r.status, 403);
    assert.match(r.text, /controlled by cm2/);
    await stray.stop();
  });

  it('calls a phone on the same node (the callee on SIP over TCP): both hear each other', async () => {
    const a = await line(...PHONE_1001);
    const b = await line('1002', 'cm1', 1000, { transport: 'tcp' });
    const reg = (await api('cm1', '/api/phones')).find((p) => p.number === '1002')!.sip_registration as {
      transport: string;
    };
    assert.equal(reg.transport, 'TCP');
    const { callee: ib } = await a.callUntilEstablished(b);
    await talkThenHangUp(a, b, ib);
    assertHears(a, 1000, 440);
    assertHears(b, 440, 1000);
  });

  it('calls a phone on another node through both call managers: both hear each other', async () => {
    const a = await line(...PHONE_1001);
    const c = await line(...PHONE_2001);
    const { caller: ia } = await a.callUntilEstablished(c);
    const calls = await api('cm2', '/api/calls');
    assert.deepEqual(
      calls.map((x) => [x.role, x.phone, x.far, x.peer_node, x.state]),
      [['callee', '2001', '1001', 'cm1', 'up']],
    );
    await new Promise((r) => setTimeout(r, 2500));
    // The callee hangs up this time.
    await c.command('hangup');
    await a.waitEvent('CALL_CLOSED', 10_000, ia);
    await Promise.all([a, c].map((p) => p.recordingsClosed()));
    assertHears(a, 1000, 440);
    assertHears(c, 440, 1000);
    await eventually(
      async () => (await api('cm1', '/api/calls')).length === 0 && (await api('cm2', '/api/calls')).length === 0,
      3000,
      'calls to end on both nodes',
    );
  });

  it('answers busy, unknown and unregistered numbers with 486, 404 and 480', async () => {
    const a = await line(...PHONE_1001);
    const b = await line('1002', 'cm1', 1000, { transport: 'tcp' });
    const c = await line(...PHONE_2001);
    // b calls c; then a calls c, which is busy.
    let ib = b.events.length;
    await b.dial('2001');
    await b.waitEvent('CALL_ESTABLISHED', 10_000, ib);
    let ia = a.events.length;
    await a.dial('2001');
    const busy = await a.waitEvent('CALL_CLOSED', 10_000, ia);
    assert.match(busy.param ?? '', /486/);
    ib = b.events.length;
    await b.command('hangup');
    await c.waitEvent('CALL_CLOSED', 10_000);
    ia = a.events.length;
    await a.dial('4444');
    assert.match((await a.waitEvent('CALL_CLOSED', 10_000, ia)).param ?? '', /404/);
    ia = a.events.length;
    await a.dial('3001');
    assert.match((await a.waitEvent('CALL_CLOSED', 10_000, ia)).param ?? '', /480/);
  });

  it('the caller hangs up before the callee answers: the callee stops ringing', async () => {
    const a = await line(...PHONE_1001);
    const d = await phone('3001', 'cm3', 1000, { answer: 'manual' });
    assert.equal((await d.registration()).status, 200);
    const ia = a.events.length;
    const id = d.events.length;
    await a.dial('3001');
    await d.waitEvent('CALL_INCOMING', 10_000, id);
    await a.waitEvent('CALL_RINGING', 10_000, ia);
    await a.command('hangup');
    const closed = await d.waitEvent('CALL_CLOSED', 10_000, id);
    assert.doesNotMatch(closed.param ?? '', /established/i);
    await eventually(
      async () => (await api('cm3', '/api/calls')).length === 0 && (await api('cm1', '/api/calls')).length === 0,
      3000,
      'no call left',
    );
  });

  it('hold and resume: the held phone is marked held and gets music on hold from its MRGL; resume releases it', async () => {
    const a = await line(...PHONE_1001);
    const c = await line(...PHONE_2001);
    const { callee: ic } = await a.callUntilEstablished(c);
    await a.command('hold');
    await eventually(
      async () => {
        const half = (await api('cm2', '/api/calls'))[0];
        return half?.held === true && (half.resources as Array<{ type: string }>).some((r) => r.type === 'moh');
      },
      5000,
      '2001 held with MOH',
    );
    assert.equal((await api('cm1', '/api/calls'))[0]!.holding, true);
    const moh = (await api('cm2', '/api/resources')).find((r) => r.name === 'MOH2')!;
    assert.equal(moh.active, 1);
    await a.command('resume');
    await eventually(async () => (await api('cm2', '/api/calls'))[0]?.held === false, 5000, 'resumed');
    assert.equal((await api('cm2', '/api/resources')).find((r) => r.name === 'MOH2')!.active, 0);
    await a.command('hangup');
    await c.waitEvent('CALL_CLOSED', 10_000, ic);
  });

  it('codecs learnt, not configured: a PCMA-only phone with no codecs in the config refuses the PCMU offer; a transcoder steps in and both hear each other', async () => {
    const a = await line(...PHONE_1001); // PCMU, 440 Hz
    const f = await phone('2008', 'cm2', 1000, { codecs: ['pcma'] });
    assert.equal((await f.registration()).status, 200);
    const { callee: iff } = await a.callUntilEstablished(f);
    const half = (await api('cm1', '/api/calls'))[0]!;
    const xc = (half.resources as Array<{ type: string; resource: string; why: string }>).find(
      (r) => r.type === 'transcoder',
    )!;
    assert.match(xc.why, /2008 refused PCMU \(488\): transcoding to PCMA/);
    await new Promise((r) => setTimeout(r, 1000));
    const node = cluster.nodes.get(xc.resource === 'XC3' ? 'cm3' : 'cm2')!;
    const media = (await (await adminFetch(`${node.admin!.url}/api/media`)).json()) as {
      sessions: Array<{ device: string; legs: Array<{ codec: string; received: number }> }>;
    };
    assert.deepEqual(
      media.sessions.find((s) => s.device === xc.resource)!.legs.map((l) => l.codec),
      ['PCMU', 'PCMA'],
    );
    await talkThenHangUp(a, f, iff);
    assertHears(a, 1000, 440);
    assertHears(f, 440, 1000);
    // What 2008 takes is now known cluster-wide (from its answer), and the next call gets the transcoder up front.
    await eventually(
      async () => (await api('cm1', '/api/phones')).find((p) => p.number === '2008')?.codecs_source === 'learnt',
      3000,
      "cm1 to learn 2008's codecs",
    );
    assert.deepEqual((await api('cm1', '/api/phones')).find((p) => p.number === '2008')!.codecs, ['PCMA']);
    const again = await a.callUntilEstablished(f);
    const second = (await api('cm1', '/api/calls'))[0]!;
    assert.match(
      (second.resources as Array<{ type: string; why: string }>).find((r) => r.type === 'transcoder')!.why,
      /no common codec: 1001 offers PCMU, 2008 takes PCMA/,
    );
    await talkThenHangUp(a, f, again.callee);
  });

  it('a codec mismatch (PCMU caller, PCMA callee) puts a transcoder on a third node in the call; both hear each other through it; it is released after', async () => {
    const a = await line(...PHONE_1001);
    const e = await line('2002', 'cm2', 1000, { codecs: ['pcma'] });
    const { callee: ie } = await a.callUntilEstablished(e);
    const half = (await api('cm1', '/api/calls'))[0]!;
    const xc = (half.resources as Array<{ type: string; resource: string; node: string; why: string }>).find(
      (r) => r.type === 'transcoder',
    )!;
    assert.equal(xc.resource, 'XC3');
    assert.equal(xc.node, 'cm3');
    assert.match(xc.why, /no common codec/);
    assert.equal((await api('cm3', '/api/resources')).find((r) => r.name === 'XC3')!.active, 1);
    // The node of the transcoder shows its media: both legs receiving, nothing lost.
    await new Promise((r) => setTimeout(r, 1000));
    const media = (await (await adminFetch(`${cluster.node('cm3').admin!.url}/api/media`)).json()) as {
      sessions: Array<{ device: string; legs: Array<{ codec: string; received: number; lost: number }> }>;
    };
    const legs = media.sessions.find((s) => s.device === 'XC3')!.legs;
    assert.deepEqual(
      legs.map((l) => l.codec),
      ['PCMU', 'PCMA'],
    );
    for (const l of legs) assert.ok(l.received > 20 && l.lost === 0, JSON.stringify(l));
    await talkThenHangUp(a, e, ie);
    assertHears(a, 1000, 440);
    assertHears(e, 440, 1000);
    await eventually(
      async () => (await api('cm3', '/api/resources')).find((r) => r.name === 'XC3')!.active === 0,
      3000,
      'transcoder released',
    );
  });

  it('a conference number takes a bridge from the caller’s MRGL for the length of the call', async () => {
    const a = await line(...PHONE_1001);
    const ia = a.events.length;
    await a.dial('8001');
    await a.waitEvent('CALL_ESTABLISHED', 10_000, ia);
    assert.equal((await api('cm1', '/api/resources')).find((r) => r.name === 'CFB1')!.active, 1);
    await a.command('hangup');
    await eventually(
      async () => (await api('cm1', '/api/resources')).find((r) => r.name === 'CFB1')!.active === 0,
      3000,
      'bridge released',
    );
  });

  it('three phones on three nodes and three codecs dial one conference number: each hears the two others and not itself', async () => {
    const a = await line(...PHONE_1001); // cm1, PCMU, 440 Hz
    const b = await line('2002', 'cm2', 1000, { codecs: ['pcma'] }); // cm2, PCMA, 1000 Hz
    const c = await phone('3002', 'cm3', 1700, { codecs: ['opus'] }); // cm3, Opus
    assert.equal((await c.registration()).status, 200);
    const at = [a, b, c].map((p) => p.events.length);
    for (const p of [a, b, c]) await p.dial('8002');
    await Promise.all([a, b, c].map((p, i) => p.waitEvent('CALL_ESTABLISHED', 10_000, at[i])));
    const cfb = (await api('cm1', '/api/resources')).find((r) => r.name === 'CFB1')!;
    assert.equal(cfb.active, 3, 'one bridge, three participants');
    await new Promise((r) => setTimeout(r, 3000));
    for (const p of [a, b, c]) await p.command('hangup');
    await Promise.all([a, b, c].map((p) => p.recordingsClosed()));
    for (const [p, own, others] of [
      [a, 440, [1000, 1700]],
      [b, 1000, [440, 1700]],
      [c, 1700, [440, 1000]],
    ] as const) {
      const t = tonesIn(readWav(p.recordings().at(-1)!), [own, ...others]);
      for (const f of others)
        assert.ok(t.share[f]! > 0.15, `${p.opts.number} should hear ${f} Hz: ${JSON.stringify(t.share)}`);
      assert.ok(t.share[own]! < 0.05, `${p.opts.number} hears itself: ${JSON.stringify(t.share)}`);
    }
    await eventually(
      async () => (await api('cm1', '/api/resources')).find((r) => r.name === 'CFB1')!.active === 0,
      3000,
      'bridge released',
    );
  });

  it('the held party hears the music-on-hold source, then the caller again after resume', async () => {
    const a = await line(...PHONE_1001); // 440 Hz
    await callAgent('2003', 'cm2', async (held) => {
      await new Promise((r) => setTimeout(r, 1000));
      const share = (since: number, f: number) => toneShare(held.heardSince(since), 8000, f);
      assert.ok(share(Date.now() - 800, 440) > 0.5, 'before hold: the caller');
      await a.command('hold');
      await eventually(async () => (await api('cm2', '/api/calls'))[0]?.held === true, 5000, 'held');
      await new Promise((r) => setTimeout(r, 1200));
      const onHold = Date.now() - 800;
      assert.ok(
        share(onHold, MOH_HZ) > 0.5,
        `on hold: music (600 Hz) ${share(onHold, MOH_HZ).toFixed(2)}, caller ${share(onHold, 440).toFixed(2)}`,
      );
      await a.command('resume');
      await eventually(async () => (await api('cm2', '/api/calls'))[0]?.held === false, 5000, 'resumed');
      await new Promise((r) => setTimeout(r, 1200));
      const after = Date.now() - 800;
      assert.ok(
        share(after, 440) > 0.5,
        `after resume: the caller again (440 Hz ${share(after, 440).toFixed(2)}, music ${share(after, MOH_HZ).toFixed(2)})`,
      );
      await a.command('hangup');
      await eventually(async () => (await api('cm2', '/api/calls')).length === 0, 5000, 'call over');
    });
  });

  it('a phone marked mtp_required gets its media through an MTP: its SDP points at the MTP, and the audio arrives through it', async () => {
    const a = await line(...PHONE_1001); // 440 Hz
    await callAgent('2004', 'cm2', async (m) => {
      const half = (await api('cm2', '/api/calls'))[0]!;
      const mtp = (half.resources as Array<{ type: string; resource: string; phone_side: string; why: string }>).find(
        (r) => r.type === 'mtp',
      )!;
      assert.equal(mtp.resource, 'MTP1');
      assert.match(mtp.why, /2004 is marked mtp_required/);
      const invite = m.received.find((r) => r.method === 'INVITE')!;
      const sdp = invite.body.toString();
      const [, addr] = /c=IN IP4 (\S+)/.exec(sdp)!;
      const [, port] = /m=audio (\d+)/.exec(sdp)!;
      assert.equal(`${addr}:${port}`, mtp.phone_side, 'the phone was offered the MTP, not the caller');
      await new Promise((r) => setTimeout(r, 1500));
      const since = Date.now() - 1000;
      assert.ok(toneShare(m.heardSince(since), 8000, 440) > 0.5, 'the caller’s tone arrives through the MTP');
      await a.command('hangup');
      await eventually(
        async () => (await api('cm1', '/api/resources')).find((r) => r.name === 'MTP1')!.active === 0,
        5000,
        'MTP released',
      );
    });
  });

  it('with the first transcoder full, the call takes the next one in the MRGL and still carries audio', async () => {
    const a = await line(...PHONE_1001);
    const e = await line('2002', 'cm2', 1000, { codecs: ['pcma'] }); // PCMA only
    // Fill XC3 (capacity 2) through the admin API of cm1, as other calls would.
    const held: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await adminFetch(`${cluster.node('cm1').admin!.url}/api/allocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ phone: '1002', type: 'transcoder' }),
      });
      const body = (await r.json()) as { id: string; resource: string };
      assert.equal(body.resource, 'XC3');
      held.push(body.id);
    }
    const { callee: ie } = await a.callUntilEstablished(e);
    const half = (await api('cm1', '/api/calls'))[0]!;
    assert.equal(
      (half.resources as Array<{ type: string; resource: string }>).find((r) => r.type === 'transcoder')!.resource,
      'XC2',
    );
    await talkThenHangUp(a, e, ie);
    assertHears(a, 1000, 440);
    assertHears(e, 440, 1000);
    for (const id of held)
      await adminFetch(`${cluster.node('cm1').admin!.url}/api/allocations/${id}`, { method: 'DELETE' });
  });

  it('DTMF between an RFC 4733 phone and a SIP INFO phone is converted by an MTP, both ways', async () => {
    const a = await line(...PHONE_1001); // baresip: RFC 4733
    await callAgent('2005', 'cm2', async (g, ia) => {
      // 2005 takes DTMF as SIP INFO.
      const half = (await api('cm1', '/api/calls'))[0]!;
      const mtp = (half.resources as Array<{ type: string; why: string }>).find((r) => r.type === 'mtp')!;
      assert.match(mtp.why, /DTMF mismatch/);
      // RFC 4733 from baresip -> SIP INFO to the agent.
      await new Promise((r) => setTimeout(r, 500));
      await a.command('sndcode', '5');
      await eventually(
        () => g.received.some((r) => r.method === 'INFO' && /Signal=5/.test(r.body.toString())),
        5000,
        'INFO with Signal=5',
      );
      // SIP INFO from the agent -> RFC 4733 to baresip.
      const ok = await g.requestInAnsweredCall('INFO', {
        type: 'application/dtmf-relay',
        data: 'Signal=7\r\nDuration=200\r\n',
      });
      assert.equal(ok.status, 200);
      const dtmf = await a.waitEvent('CALL_DTMF_START', 5000, ia);
      assert.equal(dtmf.param, '7');
      await a.command('hangup');
    });
  });

  it('a PCMU phone calls an Opus-only phone: the transcoder decodes and re-encodes, both hear each other', async () => {
    const a = await line(...PHONE_1001); // PCMU, 440 Hz
    const o = await line('2006', 'cm2', 1000, { codecs: ['opus'] });
    const { callee: io } = await a.callUntilEstablished(o);
    const half = (await api('cm1', '/api/calls'))[0]!;
    assert.equal(
      (half.resources as Array<{ type: string; resource: string }>).find((r) => r.type === 'transcoder')!.resource,
      'XC3',
    );
    await talkThenHangUp(a, o, io);
    assertHears(a, 1000, 440);
    assertHears(o, 440, 1000);
  });

  it('a PCMU phone calls a G.722-only phone: our G.722 and resampler talk to baresip’s, both hear each other', async () => {
    const a = await line(...PHONE_1001); // PCMU, 440 Hz
    const w = await line('2007', 'cm2', 1000, { codecs: ['g722'] });
    const { callee: iw } = await a.callUntilEstablished(w);
    const half = (await api('cm1', '/api/calls'))[0]!;
    assert.equal(
      (half.resources as Array<{ type: string; resource: string }>).find((r) => r.type === 'transcoder')!.resource,
      'XC3',
    );
    await talkThenHangUp(a, w, iw);
    assertHears(a, 1000, 440);
    assertHears(w, 440, 1000);
  });

  it("wideband survives devices: two G.722 phones in a conference hear each other's 6 and 5 kHz tones; a G.722 phone hears an Opus phone's 7 kHz through a transcoder", async () => {
    const w1 = await line('2007', 'cm2', 6000, { codecs: ['g722'] });
    const w2 = await line('3003', 'cm3', 5000, { codecs: ['g722'] });
    const at = [w1, w2].map((p) => p.events.length);
    for (const p of [w1, w2]) await p.dial('8003');
    await Promise.all([w1, w2].map((p, i) => p.waitEvent('CALL_ESTABLISHED', 10_000, at[i])));
    await new Promise((r) => setTimeout(r, 2500));
    for (const p of [w1, w2]) await p.command('hangup');
    await Promise.all([w1, w2].map((p) => p.recordingsClosed()));
    for (const [p, own, far] of [
      [w1, 6000, 5000],
      [w2, 5000, 6000],
    ] as const) {
      const pcm = readWav(p.recordings().at(-1)!);
      assert.equal(pcm.rate, 16000, 'baresip records G.722 calls at 16 kHz');
      const t = tonesIn(pcm, [own, far]);
      assert.ok(
        t.share[far]! > 0.3,
        `${p.opts.number} should hear ${far} Hz through the bridge: ${JSON.stringify(t.share)}`,
      );
      assert.ok(t.share[own]! < 0.05, `${p.opts.number} hears itself: ${JSON.stringify(t.share)}`);
    }
    // G.722 <-> Opus through the transcoder XC3 (16 kHz inside): 7 kHz from the Opus phone reaches the G.722 phone.
    const o = await line('2006', 'cm2', 7000, { codecs: ['opus'] });
    const { callee: iw } = await o.callUntilEstablished(w1);
    await talkThenHangUp(o, w1, iw);
    const t = tonesIn(readWav(w1.recordings().at(-1)!), [7000, 6000]);
    assert.ok(t.share[7000]! > 0.3, `2007 should hear 7 kHz through the transcoder: ${JSON.stringify(t.share)}`);
  });
});
