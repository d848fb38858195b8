// One suite's embedded cluster with SIP and media on free ports, and SIP
// agents registered to it: started before the suite's tests, stopped after.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { EmbeddedCluster } from '../../src/node/embeddedCluster.ts';
import { mediaNodes, startCluster } from './cluster.ts';
import { SipAgent } from './sipAgent.ts';

export interface SipClusterOptions {
  nodes: string[];
  /** media ports: `span` ports per node from `firstRtpPort` */
  firstRtpPort: number;
  span: number;
  /** the config after the nodes section (called in before(): it may write the files it names) */
  config: () => string;
}

export interface SipCluster {
  readonly cluster: EmbeddedCluster;
  /** each node's SIP address */
  readonly sip: Record<string, string>;
  /** A SIP agent for a phone, registered (200) at `node`; closed after the suite. */
  phone(number: string, password: string, node: string): Promise<SipAgent>;
}

export function useSipCluster(o: SipClusterOptions): SipCluster {
  const sip: Record<string, string> = {};
  const agents: SipAgent[] = [];
  let started: EmbeddedCluster | undefined;
  before(async () => {
    const nodes = await mediaNodes(o.nodes, o.firstRtpPort, o.span, sip);
    started = await startCluster(`${nodes}${o.config()}`, { sip: true, admin: false });
  });
  after(async () => {
    for (const a of agents) a.close();
    await started?.stop();
  });
  return {
    get cluster(): EmbeddedCluster {
      if (!started) throw new Error('the suite cluster is not started');
      return started;
    },
    sip,
    async phone(number, password, node) {
      const a = await SipAgent.open(number, password, sip[node]!);
      agents.push(a);
      assert.equal((await a.register()).status, 200, `${number} registers at ${node}`);
      return a;
    },
  };
}
