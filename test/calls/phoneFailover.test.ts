// Phone failover (CUCM's Call Manager Group) and registrations that survive a
// restart. 1001's device pool names [cm1, cm2]: baresip is given both as
// registrars (two accounts); cm2 keeps its binding on standby while cm1
// lives. cm1 is killed: cm2 takes the phone over (publishes it in the
// mapping table), calls reach it there and its own calls go out from there,
// through a transcoder on cm3 from the phone's own MRGL. cm1 comes back: the
// phone's next REGISTER there takes it back. Then cm3 is killed and started
// again: it takes 3001's registration back from the mapping table, so 3001
// is reachable before it registers again.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { adminFetch } from '../helpers/admin.ts';
import { readWav, tonesIn } from '../helpers/audio.ts';
import { Baresip } from '../helpers/baresip.ts';
import { eventually } from '../helpers/cluster.ts';
import { useNatsNodes } from '../helpers/natsNodes.ts';

type PhoneView = { number: string; registered_at: string | null; sip_registration: unknown };

describe('phone failover across a Call Manager Group, and registrations kept across a restart', () => {
  const phones: Baresip[] = [];
  const cluster = useNatsNodes({
    name: 'cmgroup',
    nodes: ['cm1', 'cm2', 'cm3'],
    rtp: true,
    logLevel: 'info',
    config: `
media_resources:
  XC3: { type: transcoder, node: cm3, capacity: 4, codecs: [PCMU, PCMA] }
media_resource_groups:
  G: { devices: [XC3] }
media_resource_group_lists:
  L: [G]
device_pools:
  DP12: { mrgl: L, call_managers: [cm1, cm2] }
  DP3: { mrgl: L }
phones:
  "1001": { node: cm1, password: a1, device_pool: DP12, codecs: [PCMU] }
  "3001": { node: cm3, password: c1, device_pool: DP3, codecs: [PCMA] }
`,
  });
  const phoneAt = async (viewer: string, number: string) => {
    const list = (await (
      await adminFetch(`http://${cluster.admin[viewer]}/api/phones`, { signal: AbortSignal.timeout(5000) })
    ).json()) as PhoneView[];
    return list.find((p) => p.number === number)?.registered_at ?? null;
  };
  const active = async (device: string) =>
    (
      (await (await adminFetch(`http://${cluster.admin.cm3}/api/resources`)).json()) as Array<{
        name: string;
        active: number;
      }>
    ).find((r) => r.name === device)?.active;
  /** a call that both phones hear; `dial` starts it from `from`'s side */
  const talk = async (from: Baresip, to: Baresip, dial: () => Promise<unknown>, tones: [number, number]) => {
    const at = { from: from.events.length, to: to.events.length };
    await dial();
    await Promise.all([
      from.waitEvent('CALL_ESTABLISHED', 10_000, at.from),
      to.waitEvent('CALL_ESTABLISHED', 10_000, at.to),
    ]);
    assert.equal(await active('XC3'), 1, 'through the transcoder on cm3');
    await new Promise((r) => setTimeout(r, 2000));
    await from.command('hangup');
    await to.waitEvent('CALL_CLOSED', 10_000, at.to);
    await eventually(async () => (await active('XC3')) === 0, 5000, 'XC3 released');
    for (const [p, far] of [
      [from, tones[1]],
      [to, tones[0]],
    ] as const) {
      const t = tonesIn(readWav(p.recordings().at(-1)!), [far]);
      assert.ok(t.share[far]! > 0.5, `${p.opts.number} heard ${JSON.stringify(t.share)}`);
    }
  };
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
  });

  it('registers at its own node; the backup keeps the binding on standby', async () => {
    // Every node sees the others up first, so that cm2 holds the phone on standby from the start (a backup that
    // has not heard of cm1 yet takes the phone and cm1 takes it back: test/calls/callManagerGroup.test.ts).
    const allUp = async (viewer: string) =>
      ((await (await adminFetch(`http://${cluster.admin[viewer]}/api/nodes`)).json()) as Array<{ up: boolean }>).every(
        (n) => n.up,
      );
    await eventually(
      async () => (await allUp('cm1')) && (await allUp('cm2')) && (await allUp('cm3')),
      15_000,
      'every node sees the others up',
    );
    const a = await Baresip.start({
      number: '1001',
      password: 'a1',
      registrar: cluster.sip.cm1!,
      backupRegistrars: [cluster.sip.cm2!],
      toneHz: 440,
    });
    const c = await Baresip.start({
      number: '3001',
      password: 'c1',
      registrar: cluster.sip.cm3!,
      toneHz: 1000,
      codecs: ['pcma'],
    });
    phones.push(a, c);
    await eventually(
      async () => (await phoneAt('cm3', '1001')) === 'cm1' && (await phoneAt('cm1', '3001')) === 'cm3',
      10_000,
      'both registered, 1001 at cm1',
    );
    await eventually(
      () =>
        /"phone":"1001"[^\n]*"standby":true|"standby":true[^\n]*"phone":"1001"/.test(
          cluster.procs.get('cm2')!.output(),
        ),
      10_000,
      'cm2 to hold 1001 on standby',
    );
    assert.equal(await phoneAt('cm2', '1001'), 'cm1');
  });

  it('cm1 killed: cm2 takes 1001 over; it is called there and calls out from there, through the transcoder of its own MRGL', async (t) => {
    const [a, c] = [phones[0]!, phones[1]!];
    cluster.procs.get('cm1')!.kill('SIGKILL');
    const killedAt = Date.now();
    await eventually(async () => (await phoneAt('cm3', '1001')) === 'cm2', 30_000, '1001 at cm2');
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 30_000, `failover took ${tookMs} ms`);
    t.diagnostic(`1001 reachable at cm2 ${tookMs} ms after cm1 was killed`);
    // 3001 calls 1001: cm3 routes to cm2 (PCMA -> PCMU through XC3, 3001's MRGL).
    await talk(c, a, () => c.dial('1001'), [1000, 440]);
    // 1001 calls 3001 through cm2: cm2 allocates from 1001's own MRGL.
    await talk(a, c, () => a.dialVia('3001', cluster.sip.cm2!), [440, 1000]);
    assert.match(cluster.procs.get('cm2')!.output(), /takes the phone over/);
    // Log lines name the device's node apart from the writer's (one "node" key per line), and a call's end its duration.
    const lines = cluster.procs.get('cm2')!.output().split('\n');
    const inserted = lines.find((l) => l.includes('"msg":"media resource inserted"'));
    assert.ok(inserted, 'cm2 logged the transcoder it inserted');
    assert.match(inserted, /"node":"cm2"/);
    assert.match(inserted, /"device_node":"cm3"/);
    assert.equal(inserted.match(/"node":/g)?.length, 1, inserted);
    assert.match(lines.find((l) => l.includes('"msg":"call half ended"')) ?? '', /"duration_s":\d+(\.\d)?/);
  });

  it('cm1 back: the phone stays at cm2 until it registers at cm1 again, then returns there and is called there', async () => {
    const [a, c] = [phones[0]!, phones[1]!];
    await cluster.restart('cm1');
    // (once it has heard cm2: an entry counts only while its node is up)
    await eventually(
      async () => (await phoneAt('cm1', '1001')) === 'cm2',
      5000,
      'the restarted node to leave the phone at cm2',
    );
    assert.match(cluster.procs.get('cm1')!.output(), /phone registered at another node of its group: left there/);
    await a.reRegister(cluster.sip.cm1!);
    await eventually(async () => (await phoneAt('cm3', '1001')) === 'cm1', 10_000, '1001 back at cm1');
    await eventually(
      () => /on standby here/.test(cluster.procs.get('cm2')!.output()),
      5000,
      'cm2 to put 1001 on standby',
    );
    await talk(c, a, () => c.dial('1001'), [1000, 440]);
    const calls1 = (await (await adminFetch(`http://${cluster.admin.cm1}/api/calls`)).json()) as unknown[];
    assert.equal(calls1.length, 0, 'the call ended on cm1');
  });

  it('a restarted node takes its phones’ registrations back from the mapping table: 3001 is reachable before it registers again', async () => {
    const [a, c] = [phones[0]!, phones[1]!];
    const registrations = () => c.proc.output().match(/\{0\/UDP\/v4\} 200/g)?.length ?? 0;
    const before = registrations();
    assert.ok(before >= 1);
    await cluster.restart('cm3');
    // (the log is written asynchronously: it may follow the process's "up" line)
    await eventually(
      () => /registrations restored from the mapping table/.test(cluster.procs.get('cm3')!.output()),
      5000,
      'cm3 to log the restored registrations',
    );
    await eventually(async () => (await phoneAt('cm1', '3001')) === 'cm3', 10_000, 'cm1 to see 3001 at the new cm3');
    await talk(a, c, () => a.dial('3001'), [440, 1000]);
    assert.equal(registrations(), before, '3001 did not register again meanwhile');
  });
});
