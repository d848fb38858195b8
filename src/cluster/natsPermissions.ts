// The nats-server side of the trust boundary: one NATS user per node (its
// nkey) that may publish only what a node publishes and read only its own
// inbox, its own replies and the cluster-wide subjects. Written by
// `tandem nats-setup` and scripts/start-nats-cluster.sh from the same config.
import type { ClusterModel } from '../config/model.ts';
import { archiveStreamName } from './recordArchive.ts';
import { Subjects } from './subjects.ts';

export function bucketName(model: ClusterModel): string {
  return `tandem_${model.config.cluster.name}_devices`;
}

/** The JetStream stream of the cluster's call detail records (recordArchive.ts). */
export function cdrStreamName(model: ClusterModel): string {
  return archiveStreamName(model.config.cluster.name, 'cdrs');
}

/** The inbox prefix of a node's NATS connection: replies to its requests, readable by it alone. */
export function inboxPrefix(node: string): string {
  return `_INBOX_${node}`;
}

/** Subjects a node may publish and subscribe to. */
export function nodePermissions(model: ClusterModel, node: string): { publish: string[]; subscribe: string[] } {
  const s = new Subjects(model.config.cluster.name);
  const b = bucketName(model);
  const stream = `KV_${b}`;
  const cdrs = cdrStreamName(model);
  const shared = [s.heartbeat, s.load, s.registry];
  return {
    publish: [
      `${s.prefix}.node.*.inbox`,
      `${s.prefix}.node.*.control`,
      `${s.prefix}.node.*.calls`,
      `${s.prefix}.node.*.ping`,
      ...shared,
      // the mapping table: its own device list and the numbers (phones, rooms), not another node's devices;
      // and the JetStream API calls its client makes on that stream only
      `$KV.${b}.devices.${node}`,
      `$KV.${b}.numbers.>`,
      '$JS.API.INFO',
      `$JS.API.STREAM.INFO.${stream}`,
      `$JS.API.STREAM.CREATE.${stream}`,
      `$JS.API.STREAM.MSG.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}.>`,
      `$JS.API.CONSUMER.CREATE.${stream}`,
      `$JS.API.CONSUMER.CREATE.${stream}.>`,
      `$JS.API.CONSUMER.DELETE.${stream}.>`,
      `$JS.API.CONSUMER.INFO.${stream}.>`,
      `$JS.FC.${stream}.>`,
      `$JS.ACK.${stream}.>`,
      // the call records archive: its own records in, any node's read back (an ordered consumer)
      `${s.cdrs}.${node}`,
      `$JS.API.STREAM.INFO.${cdrs}`,
      `$JS.API.STREAM.CREATE.${cdrs}`,
      `$JS.API.CONSUMER.CREATE.${cdrs}`,
      `$JS.API.CONSUMER.CREATE.${cdrs}.>`,
      `$JS.API.CONSUMER.DELETE.${cdrs}.>`,
      `$JS.API.CONSUMER.INFO.${cdrs}.>`,
      `$JS.API.CONSUMER.MSG.NEXT.${cdrs}.>`,
    ],
    subscribe: [`${s.prefix}.node.${node}.>`, ...shared, `${inboxPrefix(node)}.>`],
  };
}

const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/** An `authorization` block for nats-server's config: one nkey user per node. */
export function natsServerAuthorization(model: ClusterModel, publicKeys: ReadonlyMap<string, string>): string {
  const users = [...model.nodes.keys()].map((n) => {
    const p = nodePermissions(model, n);
    const key = publicKeys.get(n);
    if (!key) throw new Error(`no public key for node ${n}`);
    return `    # ${n}
    {
      nkey: ${JSON.stringify(key)}
      permissions: {
        publish: { allow: ${list(p.publish)} }
        subscribe: { allow: ${list(p.subscribe)} }
        # answers to requests it received, and nothing else on other nodes' inboxes
        allow_responses: true
      }
    }`;
  });
  return `# Written by tandem nats-setup for cluster "${model.config.cluster.name}": one NATS user per node.
authorization {
  users = [
${users.join('\n')}
  ]
}
`;
}
