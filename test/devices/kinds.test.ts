// The device kind is the one extension point of a kind of media resource:
// its capacity rule, its checks and how it opens media. A kind the host has
// never heard of (an echo, defined here only) opens sessions through the
// same host once it is in the registry the host is given.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import type { ResourceSpec } from '../../src/config/model.ts';
import { MEDIA_RESOURCE_TYPES, type MediaResourceType } from '../../src/config/schema.ts';
import type { DeviceKind } from '../../src/devices/kind.ts';
import { DEVICE_KINDS } from '../../src/devices/kinds.ts';
import { silentLogger } from '../../src/log.ts';
import { MediaError } from '../../src/media/mediaPlane.ts';
import { MediaHost } from '../../src/media/mediaHost.ts';
import { PortPool } from '../../src/media/portPool.ts';

/** A test-only kind: one leg that sends every packet it hears straight back (an echo test line). */
const echo: DeviceKind = {
  type: 'echo' as MediaResourceType,
  label: 'echo',
  unit: 'stream',
  perCore: 1,
  legs: 1,
  rooms: false,
  lacks: () => undefined,
  async open(host, spec, req) {
    const leg = await host.leg(undefined);
    leg.onPacket = (l, packet, rtp) =>
      l.send(rtp.payloadType, packet, rtp.payloadOffset, rtp.payloadLength, 160, rtp.marker);
    return host.sessionOf(spec, [leg], req, () => leg.close());
  },
};

const spec = (type: string): ResourceSpec => ({
  name: `K_${type}`,
  type: type as MediaResourceType,
  node: 'k',
  capacity: 4,
  location: undefined,
  codecs: [],
  audioSources: new Map(),
  prompts: new Map(),
  dtmf: [],
  srtp: false,
});

describe('device kinds', () => {
  const host = new MediaHost({
    pool: new PortPool('127.0.0.1', 54210, 54229),
    mediaDir: process.cwd(),
    log: silentLogger(),
    kinds: { ...DEVICE_KINDS, echo },
    latch: 'first_source',
  });
  after(() => host.close());

  it('the registry names every type the configuration accepts, each kind under its own type, with its label and legs', () => {
    assert.deepEqual(Object.keys(DEVICE_KINDS).sort(), [...MEDIA_RESOURCE_TYPES].sort());
    for (const [type, kind] of Object.entries(DEVICE_KINDS)) {
      assert.equal(kind.type, type);
      assert.ok(kind.label.length > 0, `${type} has a label`);
      assert.ok(kind.legs === 1 || kind.legs === 2, `${type} says how many legs a session has`);
      assert.ok(kind.perCore > 0, `${type} has a per-core capacity`);
    }
    // Only a kind whose sessions share a room is kept on one media thread per room.
    assert.deepEqual(
      Object.values(DEVICE_KINDS)
        .filter((k) => k.rooms)
        .map((k) => k.type),
      ['conference_bridge'],
    );
  });

  it('a kind added only to the registry opens media through the unchanged host', async () => {
    const session = await host.session(spec('echo'), { op: 'media', allocation_id: 'a1', legs: [{}] });
    const [end] = session.endpoints();
    assert.ok(end && end.port >= 54210 && end.port <= 54229, 'a port of the host range');
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    try {
      const back = new Promise<Buffer>((resolve) => sock.once('message', (m) => resolve(m)));
      const packet = Buffer.alloc(12 + 160, 0x55);
      packet[0] = 0x80;
      packet[1] = 0; // PCMU
      packet.writeUInt16BE(7, 2);
      // Every 20 ms, as a phone would (the leg latches to the first packet's source and may miss what comes meanwhile).
      const sending = setInterval(() => sock.send(packet, end.port, end.address), 20);
      let timer: NodeJS.Timeout | undefined;
      const got = await Promise.race([
        back,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no echo within 2 s')), 2000);
        }),
      ]).finally(() => {
        clearInterval(sending);
        clearTimeout(timer);
      });
      assert.equal(got.length, packet.length);
      assert.deepEqual(got.subarray(12), packet.subarray(12), 'the payload comes back');
      assert.equal((await host.status()).sessions, 1);
    } finally {
      session.close();
      sock.close();
    }
    assert.equal((await host.status()).sessions, 0, 'closing the session frees it');
  });

  it('a type no kind is registered for is refused with a named error', async () => {
    await assert.rejects(
      host.session(spec('fax_relay'), { op: 'media', allocation_id: 'a2', legs: [{}] }),
      (err: unknown) => err instanceof MediaError && /fax_relay devices carry no media/.test(err.message),
    );
  });
});
