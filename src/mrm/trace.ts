// The record of one MRGL walk: every group and device considered and what was
// decided about it. Returned by the API, printed by `tandem explain`, logged.
import type { Verdict } from '../cluster/messages.ts';
import type { MrglSource } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';

// (the verdicts are listed, with what each means, beside the bus message that carries a trace)
export type { MrglSource, Verdict };

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
