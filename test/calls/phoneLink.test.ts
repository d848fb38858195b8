// Our re-INVITEs to a phone go one at a time per dialog (RFC 3261 §14.1: no
// new INVITE while one is pending on the dialog), each when the one before
// has its final answer; a 491 (the phone's own re-INVITE crossed ours) is
// tried again after the RFC's random wait. PhoneLink against a stack that
// keeps what it is asked to send, answered by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { Dialog } from '../../src/calls/dialog.ts';
import { HalfCall } from '../../src/calls/halfCall.ts';
import { PhoneLink, type PhoneLinkDeps } from '../../src/calls/phoneLink.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message.ts';
import { parseSdp } from '../../src/sip/sdp.ts';
import { buildResponse } from '../../src/sip/transactions.ts';
import { offerSdp } from '../helpers/sipAgent.ts';

const CONFIG = `
nodes: { cm1: { sip: "127.0.0.1:5060", admin: "127.0.0.1:8081" } }
device_pools: { P: {} }
phones: { "1001": { node: cm1, password: a, device_pool: P } }
`;

/** A SIP stack that sends nothing: it keeps each request and its answer callback. */
function recordingStack() {
  const sent: Array<{ req: SipRequest; answer: (res: SipResponse) => void }> = [];
  return {
    sent,
    invites: () => sent.filter((s) => s.req.method === 'INVITE'),
    acks: () => sent.filter((s) => s.req.method === 'ACK'),
    stack: {
      request: (req: SipRequest, _to: unknown, onResponse: (res: SipResponse) => void) =>
        void sent.push({ req, answer: onResponse }),
    },
  };
}

function setup() {
  const parsed = parseConfig(CONFIG);
  assert.ok(parsed.ok);
  const phone = parsed.model.phones.get('1001')!;
  const rec = recordingStack();
  const link = new PhoneLink({
    stack: rec.stack,
    media: { syncMedia: async () => undefined },
    sipAddress: '127.0.0.1:5060',
    log: silentLogger() as Logger,
  } as unknown as PhoneLinkDeps);
  // The phone called: its half is the caller's, and the phone owns the Call-ID (a glare wait of 0-2 s).
  const h = new HalfCall('c1', 'caller', phone, '2001', 'cm2', { mrgl: undefined, source: 'none' } as HalfCall['mrgl']);
  h.dialog = Dialog.outgoing({
    fromUri: 'sip:2001@127.0.0.1',
    toUri: 'sip:1001@127.0.0.1',
    target: 'sip:1001@127.0.0.1:5070',
    peer: { transport: 'UDP', address: '127.0.0.1', port: 5070 },
    contact: 'sip:tandem@127.0.0.1:5060',
    callIdHost: '127.0.0.1',
  });
  h.answer();
  const answer = (i: number, status: number, port = 40000) =>
    rec
      .invites()
      [i]!.answer(
        buildResponse(
          rec.invites()[i]!.req,
          status,
          status === 200 ? { toTag: 'p', body: Buffer.from(offerSdp(port)) } : {},
        ),
      );
  return { link, h, rec, answer };
}

const offer = (port: number) => parseSdp(Buffer.from(offerSdp(port)));

describe('re-INVITEs to a phone, one at a time per dialog', () => {
  it('the second waits for the final answer to the first, then goes with its own offer', async () => {
    const { link, h, rec, answer } = setup();
    const first = link.reinvite(h, offer(30000));
    const second = link.reinvite(h, offer(30002));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rec.invites().length, 1, 'one INVITE transaction at a time');
    assert.match(rec.invites()[0]!.req.body.toString(), /m=audio 30000 /);
    answer(0, 200, 41000);
    const r1 = await first;
    assert.ok(r1.ok && r1.audio.port === 41000, 'the phone answered');
    assert.equal(rec.acks().length, 1, 'the 2xx acknowledged');
    assert.equal(h.phoneRemote?.port, 41000, 'where the phone receives now');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.invites().length, 2);
    assert.match(rec.invites()[1]!.req.body.toString(), /m=audio 30002 /);
    answer(1, 488);
    assert.deepEqual(await second, { ok: false, status: 488 });
    // The queue goes on after a refusal.
    const third = link.reinvite(h, offer(30004));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.invites().length, 3);
    answer(2, 200);
    assert.equal((await third).ok, true);
  });

  it('a 491 is tried again with the same offer after a random wait (0-2 s for the phone that owns the Call-ID)', async () => {
    const { link, h, rec, answer } = setup();
    const done = link.reinvite(h, offer(30010));
    await new Promise((r) => setTimeout(r, 20));
    answer(0, 491);
    const refusedAt = Date.now();
    while (rec.invites().length < 2 && Date.now() - refusedAt < 3000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.invites().length, 2, 'tried again');
    assert.ok(Date.now() - refusedAt <= 2500, `after ${Date.now() - refusedAt} ms`);
    assert.match(rec.invites()[1]!.req.body.toString(), /m=audio 30010 /);
    answer(1, 200);
    assert.equal((await done).ok, true);
  });

  it('a turn that fails (the request could not be built) does not stall the queue', async () => {
    const { link, h, rec, answer } = setup();
    const dialog = h.dialog!;
    const request = dialog.request.bind(dialog);
    dialog.request = () => {
      throw new Error('no request today');
    };
    await assert.rejects(link.reinvite(h, offer(30030)), /no request today/);
    dialog.request = request;
    const next = link.reinvite(h, offer(30032));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.invites().length, 1, 'the next re-INVITE went out');
    answer(0, 200);
    assert.equal((await next).ok, true);
  });

  it('a half that ended while its re-INVITE waited sends nothing more', async () => {
    const { link, h, rec, answer } = setup();
    const first = link.reinvite(h, offer(30020));
    const second = link.reinvite(h, offer(30022));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.invites().length, 1);
    h.end();
    answer(0, 200);
    assert.equal((await first).ok, true);
    assert.deepEqual(await second, { ok: false, status: 481 });
    assert.equal(rec.invites().length, 1);
  });
});
