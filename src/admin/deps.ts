// What the admin API needs of the node it serves, and nothing more. The node
// (node/callManager.ts) implements it; the admin layer never imports the node,
// so the dependency points one way (admin -> node would be a cycle).
import type { ConfigVersions } from '../config/configVersions.ts';
import type { Logger } from 'pino';
import type { CallControl } from '../calls/callControl.ts';
import type { Registrar } from '../calls/registrar.ts';
import type { SipAuthenticator } from '../calls/sipAuthenticator.ts';
import type { DeviceManager } from '../cluster/deviceManager.ts';
import type { Liveness } from '../cluster/liveness.ts';
import type {
  CallDetailRecord,
  CdrFilter,
  AllocationReleaseReply,
  ConfigApplyReply,
  DeviceStatus,
  LadderMessage,
  NodeStatusReply,
  OperatorAuthority,
  TrunkStatus,
} from '../cluster/messages.ts';
import type { ConfigProblem } from '../config/crossCheck.ts';
import type { ClusterModel } from '../config/model.ts';
import type { MediaPlane } from '../media/mediaPlane.ts';
import type { MediaResourceProcess } from '../devices/mediaResourceProcess.ts';
import type { AllocationRequest, MediaResourceManager } from '../mrm/mediaResourceManager.ts';
import type { Trace } from '../mrm/trace.ts';
import type { PhoneProcess } from '../devices/phoneProcess.ts';
import type { Refusal } from './metrics.ts';

/** A trunk as the admin API shows it (never its credentials): the status a node reports of it. */
export type TrunkView = TrunkStatus;

/** The SIP side of a node, as the admin API reads it. */
export interface AdminSipView {
  readonly calls: Pick<CallControl, 'calls' | 'setupsInProgress'>;
  readonly registrar: Pick<Registrar, 'isActive'>;
  readonly authenticator: Pick<SipAuthenticator, 'setups'>;
}

/** Who the node is: every part of the API may name it, log, and read the running model. */
export interface NodeSelf {
  readonly name: string;
  readonly boot: string;
  readonly log: Logger;
  readonly model: ClusterModel;
}

/** The cluster's nodes and the mapping table as this node sees them (ClusterView, nodes). */
export interface ClusterDeps extends NodeSelf {
  readonly liveness: Pick<Liveness, 'isUp' | 'statusOf' | 'states' | 'isolated'>;
  readonly devices: Pick<DeviceManager, 'lookup' | 'watchedNodes' | 'size'>;
  nodeStatus(
    node: string,
    want?: { detail?: boolean; history?: boolean; history_day?: boolean },
  ): Promise<NodeStatusReply>;
}

/** Phones and their registrations (routes/phones). */
export interface PhoneDeps {
  readonly model: ClusterModel;
  readonly devices: Pick<DeviceManager, 'lookup'>;
  readonly phones: ReadonlyMap<string, Pick<PhoneProcess, 'snapshot'>>;
}

/** Live calls, trunks, call records and ladders (routes/calls). */
export interface CallDeps extends NodeSelf {
  /** undefined on a node without SIP (tests, the simulation) */
  readonly sip: AdminSipView | undefined;
  /** undefined on a node without an RTP range (it hosts no media) */
  readonly media: Pick<MediaPlane, 'status' | 'describe'> | undefined;
  trunkViews(): TrunkView[];
  /** every node's records: `archived` nodes did not answer and were read from the cluster's archive (`partial`: not all of it), `missing` could not be read at all */
  cdrs(
    filter: CdrFilter,
  ): Promise<{ records: CallDetailRecord[]; missing: string[]; archived: string[]; partial: boolean }>;
  ladder(call: string): Promise<{ messages: Array<LadderMessage & { node: string }>; missing: string[] }>;
}

/** Media resources: drain, and the walk explained (routes/resources). */
export interface ResourceDeps extends NodeSelf {
  readonly liveness: Pick<Liveness, 'isUp'>;
  drainLocal(device: string, draining: boolean, operator: string): Promise<DeviceStatus | { error: string }>;
  drainOn(node: string, device: string, draining: boolean, authority: OperatorAuthority): Promise<DeviceStatus>;
  /** explain a walk for a phone of any node: its controller walks */
  explainAnywhere(req: AllocationRequest): Promise<Trace>;
}

/** Allocations held by this node's MRM, and an operator's release of one (routes/allocations). */
export interface AllocationDeps extends NodeSelf {
  readonly liveness: Pick<Liveness, 'isUp'>;
  readonly mrm: MediaResourceManager;
  /** an operator takes an allocation this node holds (a call's moves or ends) */
  releaseAllocation(id: string, operator: string): Promise<AllocationReleaseReply>;
  /** the same at another node, which checks the operator's token itself */
  releaseAllocationOn(node: string, id: string, authority: OperatorAuthority): Promise<AllocationReleaseReply>;
}

/** Alarms and their acknowledgement (routes/alarms). */
export interface AlarmDeps extends NodeSelf {
  readonly liveness: Pick<Liveness, 'isUp'>;
  /** an operator saw an alarm of this node (false: none such here) */
  acknowledgeAlarm(key: string, operator: string): boolean;
  /** asks another node to acknowledge one; the operator's token goes along as its authority */
  acknowledgeAlarmOn(node: string, key: string, authority: OperatorAuthority): Promise<boolean>;
}

/** The configuration: check, apply everywhere, versions, rollback (routes/config). */
export interface ConfigDeps extends NodeSelf {
  /** problems a new configuration would have on this running cluster (restart-only changes, missing media files) */
  configProblems(next: ClusterModel): ConfigProblem[];
  /** asks a node (this one included) to apply a configuration; the operator's token goes along as its authority */
  applyOn(
    node: string,
    config: unknown,
    parsed: ClusterModel,
    authority: OperatorAuthority,
    by: string,
  ): Promise<ConfigApplyReply>;
  /** the configurations this node has run, with their texts */
  readonly configVersions: Pick<ConfigVersions, 'list' | 'get'>;
  /** a configuration's text as written (or written out) */
  configText(m: ClusterModel): string;
}

/** What /metrics and the server's own wiring read. */
export interface MetricsDeps extends NodeSelf {
  readonly mrm: MediaResourceManager;
  /** mapping table values this node has read (a metric) */
  readonly mappingTableReads: number;
  localResources(): readonly MediaResourceProcess[];
  refusals(): Refusal[];
}

/** Everything the admin API needs of its node: each route module takes only its own part. */
export interface AdminDeps
  extends ClusterDeps,
    PhoneDeps,
    CallDeps,
    ResourceDeps,
    AllocationDeps,
    AlarmDeps,
    ConfigDeps,
    MetricsDeps {
  readonly liveness: ClusterDeps['liveness'];
  readonly devices: ClusterDeps['devices'];
}
