// One suite's production-shaped cluster: a nats-server with one user per
// node (tandem nats-setup's config), and one `tandem start --node` OS
// process per node, SIP and admin on free ports (and RTP, when asked).
// Started before the suite's tests, stopped after.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { withTestAdmin } from './admin.ts';
import { BusNetwork } from './busNetwork.ts';
import { NatsServer } from './natsServer.ts';
import { startNodeProcess } from './nodeProcess.ts';
import { sipCertificate } from '../../src/sip/tlsCertificate.ts';
import { freePort } from './ports.ts';
import type { Proc } from './proc.ts';

export interface NatsNodesOptions {
  name: string;
  nodes: string[];
  /** give each node an rtp section (41 ports from a free one) */
  rtp?: boolean;
  /** the config after `cluster` and `nodes` (the test admin tokens are added) */
  config: string;
  /** more of the `cluster` section (e.g. `node_dead_after_ms: 4000`) */
  cluster?: string;
  /** the nats-server in a network namespace of its own, each node on its own veth link to it (BusNetwork) */
  netns?: boolean;
  /** the nodes' log level (default warn) */
  logLevel?: string;
  /** serve the admin API over HTTPS with a self-signed certificate made for the test */
  adminTls?: boolean;
}

export interface NatsNodes {
  readonly sip: Record<string, string>;
  readonly admin: Record<string, string>;
  /** the config file the nodes run */
  readonly file: string;
  /** the `cluster` and `nodes` sections (and the test admin tokens): a new version of the config starts with them */
  readonly head: string;
  readonly dir: string;
  /** the nats-server (its outages are the tests' to make) */
  readonly nats: NatsServer;
  /** each node's OS process */
  readonly procs: ReadonlyMap<string, Proc>;
  /** with `netns`: the links between the nodes and the bus, to cut or impair */
  readonly network: BusNetwork;
  /** starts a node's process again (after the test killed it) */
  restart(node: string): Promise<Proc>;
}

export function useNatsNodes(o: NatsNodesOptions): NatsNodes {
  let nats: NatsServer | undefined;
  const procs = new Map<string, Proc>();
  const sip: Record<string, string> = {};
  const admin: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), `tandem-${o.name}-`));
  const file = join(dir, 'cluster.yaml');
  let head = '';
  let network: BusNetwork | undefined;
  before(async () => {
    nats = await NatsServer.prepare();
    if (o.netns) {
      network = BusNetwork.create(o.nodes);
      nats.netns = network.ns;
    }
    let nodesYaml = '';
    // RTP: consecutive blocks of 41 ports from a free one (ranges of nodes on one address must not overlap).
    let rtpBase = 0;
    while (o.rtp && (rtpBase === 0 || rtpBase + 41 * o.nodes.length > 65535)) rtpBase = await freePort();
    for (const [i, n] of o.nodes.entries()) {
      sip[n] = `127.0.0.1:${await freePort()}`;
      admin[n] = `127.0.0.1:${await freePort()}`;
      const rtp = o.rtp ? rtpBase + 41 * i : undefined;
      const bus = network ? `, bus: "${await network.busUrl(n, nats.port)}"` : '';
      nodesYaml += `  ${n}: { sip: "${sip[n]}", admin: "${admin[n]}"${bus}${rtp ? `, rtp: { address: 127.0.0.1, ports: "${rtp}-${rtp + 40}" }` : ''} }\n`;
    }
    head =
      withTestAdmin(`cluster: { name: ${o.name}, bus: "${nats.url}", heartbeat_ms: 250, node_down_after_ms: 1500${o.cluster ? `, ${o.cluster}` : ''} }
nodes:
${nodesYaml}`).trimEnd();
    if (o.adminTls) {
      // (the admin section is the head's last: its tokens; the certificate joins it)
      const c = await sipCertificate({ baseDir: dir, cluster: o.name, node: 'admin', host: '127.0.0.1' });
      head += `\n  tls: { cert: "${c.certFile}", key: "${c.certFile.replace(/\.crt$/, '.key')}" }`;
    }
    writeFileSync(file, `${head}\n${o.config}`);
    await nats.startSecured(file);
    await Promise.all(o.nodes.map(async (n) => procs.set(n, await startNodeProcess(file, n, o.logLevel))));
  });
  after(async () => {
    for (const p of procs.values()) p.kill('SIGKILL');
    await nats?.stop();
    network?.destroy();
  });
  return {
    sip,
    admin,
    file,
    dir,
    procs,
    async restart(node: string) {
      procs.get(node)?.kill('SIGKILL');
      await procs.get(node)?.exited();
      const p = await startNodeProcess(file, node, o.logLevel);
      procs.set(node, p);
      return p;
    },
    get head() {
      return head;
    },
    get network() {
      if (!network) throw new Error('useNatsNodes({ netns: true }) makes the network');
      return network;
    },
    get nats() {
      if (!nats) throw new Error('the nats-server starts in before()');
      return nats;
    },
  };
}
