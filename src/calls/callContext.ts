// What the parts of call control share: the node's services and the call
// table, the links to each half's phone and peer, the media path and the
// teardown. Built once by CallControl, handed to each part.
import type { Logger } from 'pino';
import type { TrunkPeer } from './trunkPeers.ts';
import type { TrunkStats } from './trunkStats.ts';
import type { SipPeer } from '../sip/transport.ts';
import type { PhoneLines } from './phoneLink.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import type { ClusterModel, TrunkSpec } from '../config/model.ts';
import type { Codec } from '../config/schema.ts';
import type { MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { SipStack } from '../sip/transactions.ts';
import type { CallTable } from './callTable.ts';
import type { DtmfRelay } from './dtmfRelay.ts';
import type { MediaPath } from './mediaPath.ts';
import type { PeerLink } from './peerLink.ts';
import type { PhoneLink } from './phoneLink.ts';
import type { Teardown } from './teardown.ts';

export type { PhoneLines } from './phoneLink.ts';

export interface CallContext {
  model: ClusterModel;
  node: string;
  stack: SipStack;
  mrm: MediaResourceManager;
  devices: DeviceManager;
  phones: PhoneLines;
  /** host:port this node writes in From */
  sipAddress: string;
  /** codecs seen in a phone of this node's SDP (kept, and published for the other nodes) */
  learnCodecs(number: string, codecs: Codec[], from: 'offer' | 'answer' | 'refused'): void;
  /** whether this node controls the phone now (its Call Manager Group) */
  controls(number: string): boolean;
  /** the servers of a trunk this node carries, in the order to try them (looked up from its peers) */
  trunkServers(trunk: string): readonly TrunkPeer[];
  /** whether a server of a trunk this node carries answers its keep-alive (or was never probed) */
  trunkPeerUp(trunk: string, key: string): boolean;
  /** counts of the calls through the trunks this node carries */
  trunkStats: TrunkStats;
  /** the trunk this node carries that a request from `from` comes from, if any */
  trunkAt(from: SipPeer): TrunkSpec | undefined;
  /** whether a node is up (liveness; this node always is) */
  nodeUp(node: string): boolean;
  /** the node a phone is reached at now: where the mapping table has its registration, else its own node */
  homeOf(number: string): string;
  log: Logger;
  table: CallTable;
  phone: PhoneLink;
  peer: PeerLink;
  media: MediaPath;
  teardown: Teardown;
  dtmf: DtmfRelay;
}
