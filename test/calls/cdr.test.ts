// Call detail records: every half of every call, answered or not, written by
// its node when it ends (parties, times, talk time, end reason, the devices
// and their nodes, codecs), searchable from any node of the cluster, kept
// on disk across restarts (a torn line skipped, not fatal), and exported as
// CSV that a spreadsheet cannot run as formulas.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cdrCsv } from '../../src/admin/cdrCsv.ts';
import { CdrStore } from '../../src/calls/cdrStore.ts';
import type { CallDetailRecord } from '../../src/cluster/messages.ts';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { silentLogger } from '../../src/log.ts';
import { eventually, mediaNodes, startCluster } from '../helpers/cluster.ts';
import { SipAgent, sdpMedia } from '../helpers/sipAgent.ts';
import { adminFetch } from '../helpers/admin.ts';
import { redactSip } from '../../src/sip/ladder.ts';

describe('call detail records', () => {
  let cluster: EmbeddedCluster;
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tandem-cdr-'));
  let callId = '';

  const agent = async (number: string, node: string, codecs: Array<0 | 8>) => {
    const a = await SipAgent.open(number, 'p', sip[node]!);
    a.codecs = codecs;
    agents.push(a);
    assert.equal((await a.register()).status, 200);
    return a;
  };
  const all = { limit: 500 };
  /**
   * The call the first test makes and later ones read (ladder, API, file);
   * a test run alone makes one of its own.
   */
  const aCall = async (): Promise<string> => {
    if (callId) return callId;
    const caller = await agent('1001', 'cm1', [0]);
    await agent('2001', 'cm2', [8]);
    const call = await caller.invite('2001');
    assert.equal(call.final.status, 200);
    callId = cluster.node('cm1').sip!.calls.calls()[0]!.call;
    assert.equal((await caller.bye(call)).status, 200);
    await eventually(
      () =>
        cluster
          .node('cm1')
          .cdrStore.query(all)
          .some((r) => r.call === callId),
      5000,
      "the call's record",
    );
    return callId;
  };

  before(async () => {
    const nodes = await mediaNodes(['cm1', 'cm2', 'cm3'], 54100, 60, sip);
    cluster = await startCluster(
      `
cluster: { name: cdrtest }
${nodes}
media_resources:
  XC: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
device_pools: { DP: {} }
phones:
  "1001": { node: cm1, password: p, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: p, device_pool: DP, codecs: [PCMA] }
cdr: { dir: "${dir}" }
`,
      { sip: true, admin: true },
    );
  });
  after(async () => {
    for (const a of agents) a.close();
    await cluster?.stop();
  });

  it('a transcoded call across nodes: a record per half, joined by the call, found from a third node', async () => {
    const caller = await agent('1001', 'cm1', [0]);
    await agent('2001', 'cm2', [8]);
    const t0 = Date.now();
    const call = await caller.invite('2001');
    assert.equal(call.final.status, 200);
    callId = cluster.node('cm1').sip!.calls.calls()[0]!.call;
    // Half a second of audio from the caller into the transcoder: its leg towards the caller counts it.
    await caller.streamTone(sdpMedia(call.final.body), 440, 25);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await caller.bye(call)).status, 200);
    let found = { records: [] as CallDetailRecord[], missing: [] as string[] };
    await eventually(
      async () => (found = await cluster.node('cm3').cdrs({ ...all, number: '1001' })).records.length === 2,
      3000,
      'both halves recorded',
    );
    assert.deepEqual(found.missing, []);
    const [a, b] = found.records;
    assert.equal(a!.call, callId);
    assert.equal(b!.call, callId);
    const caller_ = found.records.find((r) => r.role === 'caller')!;
    const callee_ = found.records.find((r) => r.role === 'callee')!;
    assert.deepEqual([caller_.node, caller_.party, caller_.far], ['cm1', '1001', '2001']);
    assert.deepEqual([callee_.node, callee_.party, callee_.far], ['cm2', '2001', '1001']);
    assert.deepEqual(
      caller_.resources,
      [{ type: 'transcoder', resource: 'XC', node: 'cm3' }],
      'the device and its node, as they were before release',
    );
    assert.ok(
      caller_.started_at >= t0 &&
        caller_.answered_at! >= caller_.started_at &&
        caller_.ended_at >= caller_.answered_at!,
    );
    assert.ok(caller_.duration_s >= 0.5 && caller_.duration_s < 5, `talk time ${caller_.duration_s} s`);
    assert.equal(caller_.codec_party, 'PCMU');
    assert.equal(callee_.codec_party, 'PCMA');
    assert.ok(caller_.reason.length > 0);
    // Quality as the transcoder's legs received it, from its answer to release (on cm3).
    const legs = caller_.quality ?? [];
    assert.deepEqual(
      legs.map((q) => [q.resource, q.leg]),
      [
        ['XC', 0],
        ['XC', 1],
      ],
    );
    assert.ok(legs[0]!.received >= 20 && legs[0]!.received <= 25, `the caller's leg received ${legs[0]!.received}`);
    assert.equal(legs[0]!.lost, 0);
    assert.equal(callee_.quality, undefined, 'no device on the callee half: nothing measured, nothing claimed');
  });

  it("the call's SIP ladder from any node: both nodes' messages in order, Digest responses removed; unknown calls empty, bad ids refused, no token nothing", async () => {
    const url = cluster.node('cm3').admin!.url!;
    await aCall();
    const r = await adminFetch(`${url}/api/calls/${encodeURIComponent(callId)}/ladder`);
    assert.equal(r.status, 200);
    const { messages, missing } = (await r.json()) as {
      messages: Array<{ node: string; dir: string; first: string; text: string; at: number; peer: string }>;
      missing: string[];
    };
    assert.deepEqual(missing, []);
    const on = (node: string) =>
      messages.filter((m) => m.node === node).map((m) => `${m.dir} ${m.first.split(' ')[0]}`);
    // cm1, the caller's node: challenged, then the authenticated INVITE, answered, acknowledged, hung up.
    const cm1 = on('cm1');
    for (const step of ['in INVITE', 'out 407', 'out 100', 'out 200', 'in ACK', 'in BYE'])
      assert.ok(cm1.includes(step), `cm1 ${step} in ${cm1.join(', ')}`);
    // (the 407 is acknowledged too: the call's own ACK is the last one)
    assert.ok(
      cm1.indexOf('out 407') < cm1.lastIndexOf('in INVITE') &&
        cm1.lastIndexOf('in INVITE') < cm1.lastIndexOf('in ACK') &&
        cm1.lastIndexOf('in ACK') < cm1.indexOf('in BYE'),
    );
    // cm2, the callee's node: its own INVITE to 2001, the answer, its ACK and BYE.
    const cm2 = on('cm2');
    for (const step of ['out INVITE', 'in 200', 'out ACK', 'out BYE'])
      assert.ok(cm2.includes(step), `cm2 ${step} in ${cm2.join(', ')}`);
    assert.deepEqual(
      messages.map((m) => m.at),
      [...messages.map((m) => m.at)].sort((a, b) => a - b),
      'oldest first',
    );
    assert.equal(
      messages.some((m) => /REGISTER/.test(m.first)),
      false,
      'registrations are not kept',
    );
    // The Digest answer is in the ladder, its response is not.
    const authorized = messages.find((m) => /^proxy-authorization:/im.test(m.text));
    assert.ok(authorized, 'the authenticated INVITE is there');
    assert.match(authorized.text, /response="\[redacted\]"/);
    assert.doesNotMatch(authorized.text, /response="?[0-9a-f]{32}/i);
    // Nothing for a call nobody knows; an id that is not one is refused; no token, no ladder.
    const none = (await (await adminFetch(`${url}/api/calls/nosuchcall/ladder`)).json()) as { messages: unknown[] };
    assert.deepEqual(none.messages, []);
    assert.equal(
      (await adminFetch(`${url}/api/calls/${'x'.repeat(101)}/ladder`)).status,
      414,
      'an id longer than any call id',
    );
    assert.equal((await fetch(`${url}/api/calls/${encodeURIComponent(callId)}/ladder`)).status, 401);
  });

  it('SDES keys never enter a ladder', () => {
    const sdp =
      'v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n';
    assert.equal(redactSip(sdp).includes('WVNfX19zZW1jdGwg'), false);
    assert.match(redactSip(sdp), /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\[redacted\]\|2\^20\|1:32/);
  });

  it('a call that fails is recorded too (never answered, with why); filters narrow by number and reason', async () => {
    await aCall();
    const caller = await agent('1001', 'cm1', [0]);
    assert.equal((await caller.invite('2999')).final.status, 404);
    const failed = await cluster.node('cm2').cdrs({ ...all, reason: 'no number' });
    assert.equal(failed.records.length, 1);
    assert.deepEqual(
      [failed.records[0]!.far, failed.records[0]!.answered_at, failed.records[0]!.duration_s],
      ['2999', null, 0],
    );
    assert.equal(
      (await cluster.node('cm1').cdrs({ ...all, number: '2001' })).records.length,
      2,
      'only the first call names 2001',
    );
    assert.equal((await cluster.node('cm1').cdrs({ ...all, since: Date.now() + 60_000 })).records.length, 0);
    assert.equal((await cluster.node('cm1').cdrs({ ...all, limit: 1 })).records.length, 1);
  });

  it('GET /api/cdrs: JSON and CSV from any node, bad filters refused with the reason, no token no records', async () => {
    await aCall();
    const url = cluster.node('cm2').admin!.url!;
    const json = (await (
      await adminFetch(
        `${url}/api/cdrs?number=1001&since=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}`,
      )
    ).json()) as { records: CallDetailRecord[]; missing: string[] };
    assert.ok(
      json.records.some((r) => r.call === callId && r.node === 'cm1'),
      'the caller half, kept by cm1, through cm2',
    );
    const csv = await adminFetch(`${url}/api/cdrs?format=csv&number=2001`);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines.length, 3, 'a header and the two halves');
    const bad = await adminFetch(`${url}/api/cdrs?since=yesterday`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /not a time: yesterday/);
    assert.equal((await fetch(`${url}/api/cdrs`)).status, 401);
  });

  it('a node that does not answer is named; its records are missing, the others are there', async () => {
    await aCall();
    cluster.buses.get('cm2')!.dropRequests = true;
    try {
      const r = await cluster.node('cm1').cdrs({ ...all, number: '1001' });
      assert.deepEqual(r.missing, ['cm2']);
      assert.ok(r.records.every((x) => x.node !== 'cm2'));
      assert.ok(
        r.records.some((x) => x.node === 'cm1'),
        "cm1's own records are there",
      );
    } finally {
      cluster.buses.get('cm2')!.dropRequests = false;
    }
  });

  it('kept on disk, owner-only: a store opened on the file has them; a torn line is skipped', async () => {
    await aCall();
    await cluster.node('cm1').cdrStore.flush();
    const file = join(dir, 'cdrtest-cm1.jsonl');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    appendFileSync(file, '{"call": "torn');
    const store = new CdrStore({ file, maxRecords: 1000, retentionMs: 86_400_000, log: silentLogger() });
    await store.open();
    assert.equal(store.skipped, 1);
    assert.deepEqual(
      store.query(all).map((r) => r.call),
      cluster
        .node('cm1')
        .cdrStore.query(all)
        .map((r) => r.call),
    );
    assert.ok(readFileSync(file, 'utf8').includes(callId));
    // Records written after the torn line are whole.
    store.add({ ...store.query(all)[0]!, call: 'after-torn' });
    await store.flush();
    const reread = new CdrStore({ file, maxRecords: 1000, retentionMs: 86_400_000, log: silentLogger() });
    await reread.open();
    assert.equal(reread.skipped, 1);
    assert.equal(reread.query(all)[0]!.call, 'after-torn');
  });

  const rec = (i: number, endedAt = Date.now()): CallDetailRecord => ({
    call: `c${i}`,
    role: 'caller',
    node: 'cm1',
    party: '1001',
    far: '2001',
    started_at: endedAt - 1000,
    answered_at: null,
    ended_at: endedAt,
    duration_s: 0,
    reason: 'test',
    resources: [],
    codec_party: null,
    codec_far: null,
    srtp: false,
  });

  it('count and age bound what is kept; the file is rewritten when it has grown to twice the count', async () => {
    const file = join(dir, 'bounded.jsonl');
    const store = new CdrStore({ file, maxRecords: 100, retentionMs: 3_600_000, log: silentLogger() });
    await store.open();
    store.add(rec(0, Date.now() - 7_200_000)); // older than the retention
    for (let i = 1; i <= 250; i++) store.add(rec(i));
    await store.flush();
    assert.equal(store.size, 100);
    assert.equal(store.query({ limit: 5000 }).at(-1)!.call, 'c151', 'the oldest went first');
    const lines = readFileSync(file, 'utf8').trim().split('\n').length;
    assert.ok(lines <= 200, `file rewritten: ${lines} lines`);
    const again = new CdrStore({ file, maxRecords: 100, retentionMs: 3_600_000, log: silentLogger() });
    await again.open();
    assert.equal(again.size, 100);
  });

  it('records that end together are written together, in order, each once', async () => {
    const file = join(dir, 'batched.jsonl');
    const store = new CdrStore({ file, maxRecords: 10_000, retentionMs: 3_600_000, log: silentLogger() });
    await store.open();
    for (let i = 0; i < 300; i++) {
      store.add(rec(i));
      if (i % 40 === 0) await new Promise((r) => setImmediate(r)); // a write under way meanwhile
    }
    await store.flush();
    const calls = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { call: string }).call);
    assert.deepEqual(
      calls,
      Array.from({ length: 300 }, (_, i) => `c${i}`),
    );
  });

  it('CSV: one line per half, quoted where needed, no cell a spreadsheet would run as a formula', () => {
    const r: CallDetailRecord = {
      call: 'x',
      role: 'caller',
      node: 'cm1',
      party: '=HYPERLINK("http://evil")',
      far: '+15550100',
      started_at: 0,
      answered_at: null,
      ended_at: 1000,
      duration_s: 0,
      reason: 'a, "quoted" reason',
      resources: [{ type: 'mtp', resource: 'M1', node: 'cm2' }],
      codec_party: 'PCMU',
      codec_far: null,
      srtp: true,
      quality: [
        {
          resource: 'M1',
          leg: 0,
          received: 100,
          lost: 2,
          jitter_ms: 1.5,
          far_fraction_lost: null,
          far_jitter_ms: null,
        },
        { resource: 'M1', leg: 1, received: 98, lost: 3, jitter_ms: 4.25, far_fraction_lost: 0, far_jitter_ms: 2 },
      ],
    };
    const lines = cdrCsv([r, { ...r, quality: undefined }]).split('\r\n');
    assert.equal(
      lines[0],
      'call,role,node,party,far,started_at,answered_at,ended_at,duration_s,reason,resources,codec_party,codec_far,srtp,packets_lost,max_jitter_ms',
    );
    assert.equal(
      lines[1],
      `x,caller,cm1,"'=HYPERLINK(""http://evil"")",+15550100,1970-01-01T00:00:00.000Z,,1970-01-01T00:00:01.000Z,0,"a, ""quoted"" reason",mtp:M1@cm2,PCMU,,true,5,4.25`,
    );
    assert.ok(lines[2]!.endsWith(',true,,'), 'no device legs: no figures, not zeros');
  });
});
