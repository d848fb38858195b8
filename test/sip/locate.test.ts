// Locating a trunk's servers by name (RFC 3263 without NAPTR), asked of a
// real DNS server on loopback: SRV order by priority, a name with a port as
// its addresses, a name without SRV records on the transport's default port,
// a name that does not exist, the system's resolver for /etc/hosts names.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocateError, locate, nameLookup, srvOrder } from '../../src/sip/locate.ts';
import { DnsServer } from '../helpers/dnsServer.ts';

describe('locating SIP servers (RFC 3263)', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await DnsServer.open({
      a: {
        'sbc1.carrier.test': ['127.0.0.11'],
        'sbc2.carrier.test': ['127.0.0.12', '127.0.0.13'],
        'plain.test': ['127.0.0.14'],
      },
      srv: {
        '_sip._udp.carrier.test': [
          { target: 'sbc2.carrier.test', port: 5070, priority: 20, weight: 0 },
          { target: 'sbc1.carrier.test', port: 5060, priority: 10, weight: 0 },
        ],
        '_sips._tcp.carrier.test': [{ target: 'sbc1.carrier.test', port: 5061, priority: 10, weight: 0 }],
      },
    });
  });
  after(() => dns.close());

  it("a name alone: its SRV records by priority, each target's addresses in turn, found under the target's name", async () => {
    const found = await locate({ host: 'carrier.test', port: undefined, transport: 'UDP' }, nameLookup([dns.address]));
    assert.deepEqual(
      found.map((s) => `${s.host} ${s.address}:${s.port}`),
      ['sbc1.carrier.test 127.0.0.11:5060', 'sbc2.carrier.test 127.0.0.12:5070', 'sbc2.carrier.test 127.0.0.13:5070'],
    );
    assert.ok(dns.asked.includes('SRV _sip._udp.carrier.test'));
  });

  it('TLS asks for _sips._tcp', async () => {
    const found = await locate({ host: 'carrier.test', port: undefined, transport: 'TLS' }, nameLookup([dns.address]));
    assert.deepEqual(
      found.map((s) => `${s.transport} ${s.address}:${s.port}`),
      ['TLS 127.0.0.11:5061'],
    );
  });

  it('a name with a port: its addresses only, no SRV asked', async () => {
    const before = dns.asked.length;
    const found = await locate({ host: 'sbc2.carrier.test', port: 5080, transport: 'UDP' }, nameLookup([dns.address]));
    assert.deepEqual(
      found.map((s) => `${s.address}:${s.port}`),
      ['127.0.0.12:5080', '127.0.0.13:5080'],
    );
    assert.ok(!dns.asked.slice(before).some((q) => q.startsWith('SRV')));
  });

  it("a name without SRV records: its addresses on the transport's default port", async () => {
    const found = await locate({ host: 'plain.test', port: undefined, transport: 'UDP' }, nameLookup([dns.address]));
    assert.deepEqual(
      found.map((s) => `${s.address}:${s.port}`),
      ['127.0.0.14:5060'],
    );
  });

  it('a name that does not exist is a LocateError naming it', async () => {
    await assert.rejects(
      locate({ host: 'nowhere.test', port: 5060, transport: 'UDP' }, nameLookup([dns.address])),
      (err: unknown) => err instanceof LocateError && /nowhere\.test/.test(err.message),
    );
  });

  it('a DNS server that does not answer is a LocateError, not a hang', async () => {
    const t0 = Date.now();
    await assert.rejects(
      locate({ host: 'carrier.test', port: undefined, transport: 'UDP' }, nameLookup(['127.0.0.1:9'], 300)),
      LocateError,
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  it("an address is itself; a name of /etc/hosts through the system's resolver", async () => {
    assert.deepEqual(
      (await locate({ host: '127.0.0.9', port: 5099, transport: 'UDP' }, nameLookup())).map((s) => s.address),
      ['127.0.0.9'],
    );
    const local = await locate({ host: 'localhost', port: 5099, transport: 'UDP' }, nameLookup());
    assert.ok(local.some((s) => s.address === '127.0.0.1' && s.host === 'localhost'));
  });

  it('SRV order within one priority follows the weights (RFC 2782), lower priorities first', () => {
    const recs = [
      { id: 'a', priority: 1, weight: 10 },
      { id: 'b', priority: 1, weight: 90 },
      { id: 'c', priority: 0, weight: 0 },
    ];
    // a draw in the first 10 % of the weight picks a, else b
    assert.deepEqual(
      srvOrder(recs, () => 0.05).map((r) => r.id),
      ['c', 'a', 'b'],
    );
    assert.deepEqual(
      srvOrder(recs, () => 0.5).map((r) => r.id),
      ['c', 'b', 'a'],
    );
  });
});
