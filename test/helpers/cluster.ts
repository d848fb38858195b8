// Test harness: a config from YAML text, and an embedded cluster on it.
import { parseConfig } from '../../src/config/load.ts';
import type { ClusterModel } from '../../src/config/model.ts';
import { after, before } from 'node:test';
import { createLogger, silentLogger } from '../../src/log.ts';
import { EmbeddedCluster, type EmbeddedOptions } from '../../src/node/embeddedCluster.ts';
import { withTestAdmin } from './admin.ts';
import { SignedBus } from '../../src/cluster/signedBus.ts';
import { freePort } from './ports.ts';

export function model(yaml: string): ClusterModel {
  const r = parseConfig(withTestAdmin(yaml));
  if (!r.ok) throw new Error(`test config invalid:\n${r.problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`);
  return r.model;
}

/** Three nodes on made-up admin addresses (tests bind admin APIs to free ports). */
export const NODES = `
nodes:
  cm1: { sip: "127.0.0.1:15060", admin: "127.0.0.1:18081" }
  cm2: { sip: "127.0.0.1:15070", admin: "127.0.0.1:18082" }
  cm3: { sip: "127.0.0.1:15080", admin: "127.0.0.1:18083" }
`;

/** `baseDir`: where the config's relative files (and .tandem/) are, as if the config file were there. */
export async function startCluster(
  yaml: string,
  opts: EmbeddedOptions & { baseDir?: string } = {},
): Promise<EmbeddedCluster> {
  // TANDEM_TEST_LOG=debug shows the cluster's logs while a test runs.
  const log = process.env.TANDEM_TEST_LOG ? createLogger({ level: process.env.TANDEM_TEST_LOG }) : silentLogger();
  const { baseDir, ...embedded } = opts;
  const m = model(yaml);
  if (baseDir) m.baseDir = baseDir;
  const c = new EmbeddedCluster(m, log, { admin: false, anyAdminPort: true, sip: false, ...embedded });
  await c.start();
  return c;
}

export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

/** An embedded cluster for one suite: started before its tests, stopped after; `fixture.cluster` while they run. */
export function useCluster(yaml: string, opts: EmbeddedOptions = {}): { readonly cluster: EmbeddedCluster } {
  let started: EmbeddedCluster | undefined;
  before(async () => {
    started = await startCluster(yaml, opts);
  });
  after(async () => {
    await started?.stop();
  });
  return {
    get cluster(): EmbeddedCluster {
      if (!started) throw new Error('the suite cluster is not started');
      return started;
    },
  };
}

/** A bus that signs as `node` (with its real key) and the given boot, sent from `via`'s connection: what that node could send. */
export function signedAs(cluster: EmbeddedCluster, via: string, node: string, boot: string): SignedBus {
  return new SignedBus(cluster.buses.get(via)!, {
    identity: cluster.keys!.identities.get(node)!,
    keyring: cluster.keys!.keyring,
    boot,
    onRefused: () => undefined,
  });
}

/**
 * A `nodes:` section for nodes with SIP and admin on free ports and media on
 * consecutive port ranges of `span` ports from `firstRtpPort`; also fills
 * `sip` with each node's SIP address.
 */
export async function mediaNodes(
  names: string[],
  firstRtpPort: number,
  span: number,
  sip: Record<string, string>,
): Promise<string> {
  let nodes = 'nodes:\n';
  for (const [i, n] of names.entries()) {
    sip[n] = `127.0.0.1:${await freePort()}`;
    const lo = firstRtpPort + i * span;
    nodes += `  ${n}: { sip: "${sip[n]}", admin: "127.0.0.1:${await freePort()}", rtp: { address: 127.0.0.1, ports: ${lo}-${lo + span - 1} } }\n`;
  }
  return nodes;
}
