// One suite's production-shaped cluster: a nats-server with one user per
// node (tandem nats-setup's config), and one `tandem start --node` OS
// process per node, SIP and admin on free ports (and RTP, when asked).
// Started before the suite's tests, stopped after.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { withTestAdmin } from './admin.ts';
import { NatsServer } from './natsServer.ts';
import { startNodeProcess } from './nodeProcess.ts';
import { freePort } from './ports.ts';
import type { Proc } from './proc.ts';

export interface NatsNodesOptions {
  name: string;
  nodes: string[];
  /** give each node an rtp section (41 ports from a free one) */
  rtp?: boolean;
  /** the config after `cluster` and `nodes` (the test admin tokens are added) */
  config: string;
}

export interface NatsNodes {
  readonly sip: Record<string, string>;
  readonly admin: Record<string, string>;
  /** the config file the nodes run */
  readonly file: string;
  /** the `cluster` and `nodes` sections (and the test admin tokens): a new version of the config starts with them */
  readonly head: string;
  readonly dir: string;
}

export function useNatsNodes(o: NatsNodesOptions): NatsNodes {
  let nats: NatsServer | undefined;
  const procs: Proc[] = [];
  const sip: Record<string, string> = {};
  const admin: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), `tandem-${o.name}-`));
  const file = join(dir, 'cluster.yaml');
  let head = '';
  before(async () => {
    nats = await NatsServer.prepare();
    let nodesYaml = '';
    for (const n of o.nodes) {
      sip[n] = `127.0.0.1:${await freePort()}`;
      admin[n] = `127.0.0.1:${await freePort()}`;
      const rtp = o.rtp ? await freePort() : undefined;
      nodesYaml += `  ${n}: { sip: "${sip[n]}", admin: "${admin[n]}"${rtp ? `, rtp: { address: 127.0.0.1, ports: "${rtp}-${rtp + 40}" }` : ''} }\n`;
    }
    head = withTestAdmin(`cluster: { name: ${o.name}, bus: "${nats.url}", heartbeat_ms: 250, node_down_after_ms: 1500 }
nodes:
${nodesYaml}`).trimEnd();
    writeFileSync(file, `${head}\n${o.config}`);
    await nats.startSecured(file);
    procs.push(...(await Promise.all(o.nodes.map((n) => startNodeProcess(file, n)))));
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await nats?.stop();
  });
  return {
    sip,
    admin,
    file,
    dir,
    get head() {
      return head;
    },
  };
}
