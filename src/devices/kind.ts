import type { ResourceSpec } from '../config/model.ts';
import type { MediaResourceType } from '../config/schema.ts';
import type { Requirement } from '../cluster/messages.ts';

/** What is particular to one type of media resource device. */
export interface DeviceKind {
  type: MediaResourceType;
  /** what one unit of capacity is, for humans */
  unit: string;
  /** undefined when the device can serve the requirement, else why not */
  lacks(spec: ResourceSpec, req: Requirement): string | undefined;
}

export function missing<T>(have: readonly T[], want: readonly T[] | undefined): T[] {
  return (want ?? []).filter((w) => !have.includes(w));
}
