// One process of the simulation: the cluster layer of several nodes (bus,
// liveness, mapping table, device processes, MRM; no SIP, media or admin
// API), each node on its own NATS connection with its own key, as
// startNodes runs them. Driven by the orchestrator over IPC.
import { parseArgs } from 'node:util';
import { createLogger, silentLogger } from '../../src/log.ts';
import { makePid } from '../../src/cluster/pid.ts';
import { startNodes } from '../../src/node/launch.ts';
import type { CallManager } from '../../src/node/callManager.ts';
import { PROBE_BRIDGE, simModel } from './model.ts';
import type { SimReply, SimRequest } from './protocol.ts';

const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string' },
    devices: { type: 'string' },
    ports: { type: 'string' },
    dir: { type: 'string' },
    run: { type: 'string' },
  },
});
const model = simModel({
  nodes: Number(a.nodes),
  devices: Number(a.devices),
  busPorts: a.ports!.split(',').map(Number),
  baseDir: a.dir!,
});
const mine = a.run!.split(',');
// TANDEM_SIM_LOG=warn shows the nodes' logs (to stderr).
const log = process.env.TANDEM_SIM_LOG ? createLogger({ level: process.env.TANDEM_SIM_LOG }) : silentLogger();
const send = (m: SimReply) => process.send!(m);
const devicesOn = new Map<string, number>();
for (const r of model.resources.values()) devicesOn.set(r.node, (devicesOn.get(r.node) ?? 0) + 1);
/** what a node's table should hold: every phone, and the devices of the nodes it watches */
const expects = (cm: CallManager) =>
  cm.devices.watchedNodes.reduce((n, w) => n + (devicesOn.get(w) ?? 0), model.phones.size);

const downs = new Map<string, number>();
const seen = new Map<string, Map<string, number>>();
let running: CallManager[] = [];

process.on(
  'message',
  (m: SimRequest) => void handle(m).catch((err: unknown) => send({ op: 'error', message: (err as Error).message })),
);

async function handle(m: SimRequest): Promise<void> {
  switch (m.op) {
    case 'status': {
      send({
        op: 'status',
        rssMb: process.memoryUsage().rss / 2 ** 20,
        cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
        nodes: running.map((cm) => {
          // What the node needs: the devices its phone's MRGL names (the next node's) and every phone.
          const needs = [
            ...(model.mrgls
              .get(`L${Number(cm.name.slice(2)) - 1}`)
              ?.flatMap((g) => model.groups.get(g)?.devices ?? []) ?? []),
            ...model.phones.keys(),
          ];
          const expected = expects(cm);
          return {
            node: cm.name,
            up: cm.liveness.states().filter((s) => s.up).length + 1,
            entries: cm.devices.size,
            expects: expected,
            // looked up only once every entry is there (a lookup checks an entry's signature)
            registered: cm.devices.size >= expected ? needs.filter((d) => cm.devices.lookup(d).registered).length : 0,
            needs: needs.length,
            unchecked: cm.devices.uncheckedCount,
            downs: downs.get(cm.name) ?? 0,
          };
        }),
      });
      return;
    }
    case 'allocate': {
      const cm = running.find((c) => c.name === m.node)!;
      const t0 = performance.now();
      try {
        const alloc = await cm.mrm.allocate({ phone: m.phone, type: 'transcoder' });
        const ms = performance.now() - t0;
        await alloc.release();
        send({ op: 'allocated', id: m.id, ms, at: alloc.node });
      } catch (err) {
        send({ op: 'allocated', id: m.id, ms: performance.now() - t0, error: (err as Error).message });
      }
      return;
    }
    case 'publish': {
      // A conference room opening on cm1's bridge: the same entry CallManager writes for one.
      const cm = running.find((c) => c.name === 'cm1')!;
      const pid = makePid({ node: cm.name, kind: 'media_resource', name: PROBE_BRIDGE, boot: cm.boot });
      // (the writer holds its own entry at once; the others hear of it through the mapping table)
      seen.set(m.name, new Map([[cm.name, Date.now()]]));
      await cm.devices.register({
        name: m.name,
        kind: 'conference',
        type: 'conference_bridge',
        pid,
        node: cm.name,
        boot: cm.boot,
      });
      return;
    }
    case 'seen': {
      send({ op: 'seen', name: m.name, at: Object.fromEntries(seen.get(m.name) ?? []) });
      return;
    }
    case 'stop': {
      const t = Date.now();
      await Promise.race([Promise.all(running.map((cm) => cm.stop(true))), new Promise((r) => setTimeout(r, 10_000))]);
      if (Date.now() - t >= 10_000) console.error(`worker (${mine[0]}..): its nodes did not stop within 10 s`);
      process.exit(0);
    }
  }
}

const t0 = Date.now();
// All at once, as separate machines would start (startNodes itself starts a process's nodes one after the other).
const started = await Promise.all(mine.map((n) => startNodes(model, log, [n], { admin: false, sip: false })));
running = started.flatMap((s) => s.nodes);
for (const cm of running) {
  cm.liveness.on('node_down', () => downs.set(cm.name, (downs.get(cm.name) ?? 0) + 1));
  cm.devices.on('registered', (e) => {
    if (!e.name.startsWith('conf-')) return;
    const at = seen.get(e.name) ?? new Map<string, number>();
    at.set(cm.name, Date.now());
    seen.set(e.name, at);
  });
}
send({ op: 'started', ms: Date.now() - t0 });
