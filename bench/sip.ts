// npm run bench:sip [-- --bus memory|nats] [--pairs 20] [--seconds 10] [--no-invite-auth]
// Call setups per second (INVITE to 200, ACK, then BYE) through one call
// manager and across two, driven by the project's SIP agent (test/helpers/
// sipAgent.ts) as load generator. Baseline in the same run: the same agents
// calling each other directly (no call manager), the generator's own limit.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { validateConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { startNodes } from '../src/node/launch.ts';
import { generateKeys } from '../src/cluster/nodeKeys.ts';
import { freePort } from '../test/helpers/ports.ts';
import { SipAgent } from '../test/helpers/sipAgent.ts';
import { openBenchBus } from './clusters.ts';

const { values: args } = parseArgs({
  options: {
    bus: { type: 'string', default: 'memory' },
    pairs: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '10' },
    /** measure without the 407 challenge of each INVITE (one round trip fewer per call) */
    'no-invite-auth': { type: 'boolean', default: false },
  },
});
const PAIRS = Number(args.pairs);
const SECONDS = Number(args.seconds);

interface Result {
  calls_per_s: number;
  setup_p50_ms: number;
  setup_p99_ms: number;
  failed: number;
  /** why calls failed: final status or "timeout" */
  failures: Record<string, number>;
}

const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;

/** Each caller calls its callee over and over for SECONDS: INVITE, 200, ACK, BYE, 200. */
async function drive(pairs: Array<[SipAgent, string]>): Promise<Result> {
  const setup: number[] = [];
  let failed = 0;
  const failures: Record<string, number> = {};
  const fail = (why: string) => {
    failed++;
    failures[why] = (failures[why] ?? 0) + 1;
  };
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    pairs.map(async ([caller, callee]) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          const call = await caller.invite(callee, { timeoutMs: 5000 });
          if (call.final.status !== 200) {
            fail(`INVITE ${call.final.status} ${call.final.reason}`);
            continue;
          }
          setup.push(performance.now() - t0);
          const bye = await caller.bye(call);
          if (bye.status !== 200) fail(`BYE ${bye.status}`);
        } catch (err) {
          fail((err as Error).message.replace(/call-\w+|\d+ ms/g, '').slice(0, 80));
        }
      }
    }),
  );
  setup.sort((a, b) => a - b);
  return {
    calls_per_s: Math.round(setup.length / SECONDS),
    setup_p50_ms: +pct(setup, 50).toFixed(2),
    setup_p99_ms: +pct(setup, 99).toFixed(2),
    failed,
    failures,
  };
}

async function run(): Promise<void> {
  const benchBus = await openBenchBus(args.bus!);
  const sip = { cm1: `127.0.0.1:${await freePort()}`, cm2: `127.0.0.1:${await freePort()}` };
  const phones: Record<string, unknown> = {};
  for (let i = 0; i < PAIRS; i++) {
    phones[String(1000 + i)] = { node: 'cm1', password: 'p', device_pool: 'DP' };
    phones[String(2000 + i)] = { node: 'cm1', password: 'p', device_pool: 'DP' };
    phones[String(3000 + i)] = { node: 'cm2', password: 'p', device_pool: 'DP' };
  }
  const r = validateConfig({
    cluster: { name: 'benchsip', bus: benchBus.url, request_timeout_ms: 2000 },
    nodes: {
      cm1: { sip: sip.cm1, admin: `127.0.0.1:${await freePort()}` },
      cm2: { sip: sip.cm2, admin: `127.0.0.1:${await freePort()}` },
    },
    device_pools: { DP: {} },
    phones,
    sip: { authenticate_invites: !args['no-invite-auth'] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  if (benchBus.url !== 'memory') generateKeys(r.model); // node keys as in production
  const running = await startNodes(r.model, silentLogger(), undefined, { admin: false });
  const agents = new Map<string, SipAgent>();
  for (const n of Object.keys(phones)) {
    const node = n.startsWith('3') ? sip.cm2 : sip.cm1;
    const a = await SipAgent.open(n, 'p', node);
    const reg = await a.register();
    if (reg.status !== 200) throw new Error(`register ${n}: ${reg.status}`);
    agents.set(n, a);
  }
  await new Promise((res) => setTimeout(res, 500)); // registrations reach every node's mapping table
  const results: Record<string, unknown> = {};
  const callers = [...Array(PAIRS).keys()].map((i) => agents.get(String(1000 + i))!);

  console.error(`[bench:sip ${args.bus}] baseline: agents calling each other directly, ${PAIRS} pairs, ${SECONDS}s`);
  // Direct: the caller's "registrar" is the callee agent itself.
  const direct = await Promise.all(
    callers.map(async (_, i) => {
      const callee = agents.get(String(2000 + i))!;
      return SipAgent.open(`9${i}`, 'p', `127.0.0.1:${callee.port}`);
    }),
  );
  results.direct_agent_to_agent = await drive(direct.map((a, i) => [a, String(2000 + i)]));
  direct.forEach((a) => a.close());
  console.error(`[bench:sip ${args.bus}] through one call manager (cm1 -> cm1)`);
  results.one_node = await drive(callers.map((a, i) => [a, String(2000 + i)]));
  console.error(`[bench:sip ${args.bus}] across two call managers (cm1 -> cm2)`);
  results.two_nodes = await drive(callers.map((a, i) => [a, String(3000 + i)]));
  const d = results.direct_agent_to_agent as Result;
  results.one_node_over_direct = +((results.one_node as Result).calls_per_s / d.calls_per_s).toFixed(2);
  results.two_nodes_over_direct = +((results.two_nodes as Result).calls_per_s / d.calls_per_s).toFixed(2);
  results.machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    node: process.version,
    bus: args.bus,
    pairs: PAIRS,
    seconds: SECONDS,
    invite_auth: !args['no-invite-auth'],
  };
  for (const a of agents.values()) a.close();
  await running.stop();
  await benchBus.close();
  console.log(JSON.stringify(results, null, 2));
}

await run();
