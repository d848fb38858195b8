// What the admin API answers, as types of their own (no server code), so the
// console's script is checked against the very shapes the routes return
// (console/jsconfig.json) and the CLI reads them with the same names.
import type { ConfigApplyReply, RegistryEntry } from '../cluster/messages.ts';
import type { MrglSource } from '../config/model.ts';
import type { Codec, SrtpPolicy } from '../config/schema.ts';
import type { ConfigProblem } from '../config/crossCheck.ts';

/** The answer to tandem apply (and to a rollback): the version, who asked, and each node's outcome. */
export interface ApplyView {
  version: string;
  by: string;
  nodes: ConfigApplyReply[];
}

/** The editor's check of a text: its problems, or what it would change on each node and how its text differs. */
export interface ConfigCheckView {
  ok: boolean;
  version: string | null;
  problems: ConfigProblem[];
  /** per node, what applying it would do there (empty: nothing) */
  changes: Array<{ node: string; changes: string[] }>;
  /** a unified diff of the running text and this one */
  diff: string;
}

export interface ConfigTextView {
  version: string;
  text: string;
  applied_at?: number;
  by?: string;
}

/** The body of every refusal (4xx, 5xx): what the CLI and the console read. */
export interface ApiError {
  error: string;
  /** allocation refusals: unknown_phone, not_local, unknown_mrgl, no_resource */
  code?: string;
  /** not_local: the node that controls the phone (ask it instead) */
  controller?: string;
  /** a configuration refused: each problem with its path */
  problems?: Array<{ path: string; message: string }>;
}

/** A phone of the cluster as GET /api/phones shows it. */
export interface PhoneView {
  number: string;
  node: string;
  device_pool: string | undefined;
  user_class: string | undefined;
  location: string | null;
  mrgl: string | null;
  mrgl_source: MrglSource;
  /** what call control assumes the phone takes: configured, else learnt from its SDP, else the default */
  codecs: readonly Codec[];
  codecs_source: 'config' | 'learnt' | 'default';
  srtp: SrtpPolicy;
  pid: string | null;
  registered: boolean;
  /** where the phone registered from (cluster-wide, from the mapping table) */
  sip_registration: NonNullable<RegistryEntry['registration']> | null;
  /** the node it is registered at now: its own, or another of its Call Manager Group */
  registered_at: string | null;
  call_managers: readonly string[];
}
