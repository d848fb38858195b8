// A call across two call managers in two OS processes over a real
// nats-server, between two real phones: signalling crosses NATS, media flows
// phone to phone, each hears the other. Then an SRTP call through a
// transcoder on the other node: the SDP (keys) and the media requests (keys)
// cross NATS sealed, and the answers come back sealed.
import { adminFetch } from '../helpers/admin.ts';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

describe('a call across two node processes over NATS', () => {
  const phones: Baresip[] = [];
  const { sip, admin } = useNatsNodes({
    name: 'natscall',
    nodes: ['cm1', 'cm2'],
    rtp: true,
    config: `
media_resources:
  XC2: { type: transcoder, node: cm2, capacity: 2, codecs: [PCMU, PCMA] }
device_pools:
  DP: {}
phones:
  "1001": { node: cm1, password: a1, device_pool: DP, codecs: [PCMU] }
  "2001": { node: cm2, password: b2, device_pool: DP, codecs: [PCMU] }
  "1002": { node: cm1, password: a2, device_pool: DP, codecs: [PCMU] }
  "2002": { node: cm2, password: b3, device_pool: DP, codecs: [PCMA] }
`,
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
  });

  it('1001 on cm1 calls 2001 on cm2; both hear each other; both nodes see the call and its end', async () => {
    const a = await Baresip.start({ number: '1001', password: 'a1', registrar: sip.cm1!, toneHz: 440 });
    const b = await Baresip.start({ number: '2001', password: 'b2', registrar: sip.cm2!, toneHz: 1000 });
    phones.push(a, b);
    assert.equal((await a.registration()).status, 200);
    assert.equal((await b.registration()).status, 200);
    // cm1 must learn 2001's registration through the mapping table in NATS KV.
    await eventually(
      async () => {
        const list = (await (await adminFetch(`http://${admin.cm1}/api/phones`)).json()) as Array<{
          number: string;
          sip_registration: unknown;
        }>;
        return list.find((p) => p.number === '2001')?.sip_registration != null;
      },
      5000,
      'cm1 to see 2001 registered',
    );
    await a.dial('2001');
    await b.waitEvent('CALL_ESTABLISHED', 10_000);
    await a.waitEvent('CALL_ESTABLISHED', 10_000);
    const calls = (await (await adminFetch(`http://${admin.cm2}/api/calls`)).json()) as Array<{
      phone: string;
      peer_node: string;
      state: string;
    }>;
    assert.deepEqual(
      calls.map((c) => [c.phone, c.peer_node, c.state]),
      [['2001', 'cm1', 'up']],
    );
    await new Promise((r) => setTimeout(r, 2500));
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000);
    await Promise.all([a, b].map((p) => p.recordingsClosed()));
    for (const [p, far, own] of [
      [a, 1000, 440],
      [b, 440, 1000],
    ] as const) {
      const rec = p.recordings();
      assert.ok(rec.length, `${p.opts.number} recorded nothing`);
      const t = tonesIn(readWav(rec.at(-1)!), [far, own]);
      assert.ok(
        t.share[far]! > 0.5 && t.share[own]! < 0.05,
        `${p.opts.number} heard ${JSON.stringify(t.share)} (rms ${t.rms.toFixed(0)})`,
      );
    }
    await eventually(
      async () => ((await (await adminFetch(`http://${admin.cm2}/api/calls`)).json()) as unknown[]).length === 0,
      3000,
      'call gone on cm2',
    );
  });

  it('SRTP phones (srtp-mand) through a transcoder on the other node: keys cross NATS sealed; both hear each other', async () => {
    const a = await Baresip.start({
      number: '1002',
      password: 'a2',
      registrar: sip.cm1!,
      toneHz: 440,
      mediaenc: 'srtp-mand',
    });
    const b = await Baresip.start({
      number: '2002',
      password: 'b3',
      registrar: sip.cm2!,
      toneHz: 1000,
      codecs: ['pcma'],
      mediaenc: 'srtp-mand',
    });
    phones.push(a, b);
    assert.equal((await a.registration()).status, 200);
    assert.equal((await b.registration()).status, 200);
    await eventually(
      async () => {
        const list = (await (await adminFetch(`http://${admin.cm1}/api/phones`)).json()) as Array<{
          number: string;
          sip_registration: unknown;
        }>;
        return list.find((p) => p.number === '2002')?.sip_registration != null;
      },
      5000,
      'cm1 to see 2002 registered',
    );
    const at = await a.callUntilEstablished(b);
    const calls = (await (await adminFetch(`http://${admin.cm1}/api/calls`)).json()) as Array<{
      srtp: unknown;
      resources: Array<{ resource: string; phone_side_srtp: string | null; far_side_srtp: string | null }>;
    }>;
    assert.deepEqual(calls[0]!.srtp, { phone: 'AES_CM_128_HMAC_SHA1_80', far: 'AES_CM_128_HMAC_SHA1_80' });
    assert.deepEqual(
      calls[0]!.resources.map((r) => [r.resource, r.phone_side_srtp, r.far_side_srtp]),
      [['XC2', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_80']],
    );
    await new Promise((r) => setTimeout(r, 2500));
    await a.command('hangup');
    await b.waitEvent('CALL_CLOSED', 10_000, at.callee);
    await Promise.all([a, b].map((p) => p.recordingsClosed()));
    for (const [p, far] of [
      [a, 1000],
      [b, 440],
    ] as const) {
      const t = tonesIn(readWav(p.recordings().at(-1)!), [far]);
      assert.ok(t.share[far]! > 0.4, `${p.opts.number} heard ${JSON.stringify(t.share)}`);
    }
  });
});
