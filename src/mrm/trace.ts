// The record of one MRGL walk: every group and device considered and what was
// decided about it. Returned by the API, printed by `tandem explain`, logged.
import type { MrglSource } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';

export type { MrglSource };

export type Verdict =
  /** the group is limited to another user class */
  | 'user_class_mismatch'
  | 'wrong_type'
  /** no PID in the mapping table, or the hosting node is down */
  | 'not_registered'
  | 'no_capability'
  | 'unavailable'
  | 'timeout'
  | 'allocated'
  /** explain only: the device has room now and would be chosen */
  | 'would_allocate'
  /** explain only: a candidate after the one that would be chosen */
  | 'not_reached';

export interface TraceStep {
  group: string;
  device: string | null;
  verdict: Verdict;
  detail?: string;
  node?: string;
  pid?: string;
  /** time spent on this device's request, ms */
  ms?: number;
}

export interface Trace {
  phone: string;
  type: MediaResourceType;
  mrgl: string | null;
  mrgl_source: MrglSource;
  steps: TraceStep[];
}
